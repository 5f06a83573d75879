# SPDX-License-Identifier: MIT
# The FAISS peer of bench/local_bench.sh's exact search: IndexFlat top-k of every query,
# timed from loading the NPY files to the results (imports excluded). Cosine is inner
# product over L2-normalised copies (normalising is inside the timing).
#   exact_peer.py DATA.npy QUERIES.npy METRIC K OUT.npy   -> prints seconds; OUT holds the ids
import sys
import time

import faiss
import numpy as np

data_path, queries_path, metric, k, out_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
t0 = time.perf_counter()
x = np.load(data_path)
q = np.load(queries_path)
if metric == "cosine":
    x = x.copy()
    q = q.copy()
    faiss.normalize_L2(x)
    faiss.normalize_L2(q)
index = faiss.IndexFlatL2(x.shape[1]) if metric == "euclidean" else faiss.IndexFlatIP(x.shape[1])
index.add(x)
_, ids = index.search(q, k)
t1 = time.perf_counter()
np.save(out_path, ids)
print(f"{t1 - t0:.3f}")
