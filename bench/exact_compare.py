# SPDX-License-Identifier: MIT
# Compares vstash's `query --queries` NDJSON with the FAISS peer's ids (bench/local_bench.sh):
# prints how many queries have identical top-k ids, and how many of the others differ only
# by ties (the differing rows score within 1e-5 of the k-th by exact double arithmetic).
#   exact_compare.py VSTASH.ndjson PEER_IDS.npy DATA.npy QUERIES.npy METRIC
import json
import sys

import numpy as np

ndjson, peer_path, data_path, queries_path, metric = sys.argv[1:6]
peer = np.load(peer_path)
x = np.load(data_path, mmap_mode="r")
q = np.load(queries_path).astype(np.float64)


def score(qi, rows):
    v = np.asarray(x[rows], dtype=np.float64)
    if metric == "euclidean":
        return np.sqrt(((v - q[qi]) ** 2).sum(axis=1))
    d = v @ q[qi]
    if metric == "cosine":
        d = d / (np.linalg.norm(v, axis=1) * np.linalg.norm(q[qi]) + 1e-300)
    return d


same = ties = other = 0
with open(ndjson) as f:
    for line in f:
        rec = json.loads(line)
        qi = rec["query"]
        ours = [h["index"] for h in rec["hits"]]
        theirs = [int(i) for i in peer[qi]]
        if ours == theirs:
            same += 1
            continue
        a = score(qi, np.array(sorted(set(ours) - set(theirs)), dtype=np.int64))
        b = score(qi, np.array(sorted(set(theirs) - set(ours)), dtype=np.int64))
        if len(a) == 0 or np.allclose(np.sort(a), np.sort(b), rtol=1e-5, atol=1e-6):
            ties += 1
        else:
            other += 1
print(f"{same} identical, {ties} differ by ties or order of equal scores, {other} different")
