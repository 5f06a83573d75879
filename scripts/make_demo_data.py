#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the demo's small dataset: 512 samples of 8x8 "digits" flattened to 64 floats,
integer labels, per-row metadata, one query vector and a parameter array."""
import json
import sys

import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(42)
n, dim = 512, 64
labels = rng.integers(0, 10, size=n).astype(np.int64)
centers = rng.normal(size=(10, dim)).astype(np.float32)
train = (centers[labels] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)
np.save(f"{out}/train.npy", train)
np.save(f"{out}/labels.npy", labels)
np.save(f"{out}/query.npy", centers[7])
np.save(f"{out}/params.npy", rng.normal(size=(16, 16)).astype(np.float32))
with open(f"{out}/metadata.jsonl", "w") as f:
    for i in range(n):
        split = "holdout" if i % 10 == 0 else "train"
        f.write(json.dumps({"digit": int(labels[i]), "split": split, "source": "demo"}) + "\n")
