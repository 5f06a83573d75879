# SPDX-License-Identifier: MIT
# The data and the FAISS peer of bench/hnsw_bench.sh (the local store's HNSW index).
#   hnsw_peer.py data KIND ROWS DIM SEED OUT.npy        writes float32 rows (recipes below)
#   hnsw_peer.py truth DATA.npy Q.npy METRIC K OUT.npy  exact top-k ids (FAISS IndexFlat); prints seconds
#   hnsw_peer.py build DATA.npy METRIC M EFC INDEX      FAISS IndexHNSWFlat, written to INDEX; prints seconds
#   hnsw_peer.py search INDEX Q.npy METRIC EF K OUT.npy reads INDEX, searches; prints seconds (read included)
#   hnsw_peer.py recall ANSWER TRUTH.npy                recall@k of ANSWER (ids .npy, or vstash's ndjson)
# Data recipes (KIND):
#   normal     every value N(0, 1), independent: no structure at all, HNSW's worst case.
#   clustered  a Gaussian mixture resembling text/image embeddings: 1,000 centres drawn once
#              (seed 7) as N(0, I_dim); a row is a centre chosen uniformly plus N(0, 0.5^2 I_dim)
#              noise, L2-normalised (so cosine, dot and euclidean rank alike). Two rows of one
#              cluster have cosine about 0.8, of two clusters about 0. Queries are fresh draws
#              from the same mixture (another SEED), not rows of the dataset.
# Cosine in FAISS is inner product over L2-normalised copies (normalising inside the timing).
import json
import sys
import time

import numpy as np


def data(kind, rows, dim, seed, out_path):
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).standard_normal((1000, dim), dtype=np.float32)
    step = 262144
    for i in range(0, rows, step):
        n = min(step, rows - i)
        if kind == "normal":
            out[i:i + n] = rng.standard_normal((n, dim), dtype=np.float32)
        elif kind == "clustered":
            block = centres[rng.integers(0, len(centres), n)] + np.float32(0.5) * rng.standard_normal(
                (n, dim), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[i:i + n] = block
        else:
            sys.exit(f"hnsw_peer.py: unknown data kind {kind}")
    out.flush()


def prepared(path, metric):
    import faiss
    x = np.ascontiguousarray(np.load(path), dtype=np.float32)
    if metric == "cosine":
        faiss.normalize_L2(x)
    return x


def faiss_metric(metric):
    import faiss
    return faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT


def truth(data_path, q_path, metric, k, out_path):
    import faiss
    t0 = time.perf_counter()
    x, q = prepared(data_path, metric), prepared(q_path, metric)
    index = faiss.IndexFlat(x.shape[1], faiss_metric(metric))
    index.add(x)
    _, ids = index.search(q, k)
    t1 = time.perf_counter()
    np.save(out_path, ids)
    print(f"{t1 - t0:.3f}")


def build(data_path, metric, m, efc, index_path):
    import faiss
    t0 = time.perf_counter()
    x = prepared(data_path, metric)
    index = faiss.IndexHNSWFlat(x.shape[1], m, faiss_metric(metric))
    index.hnsw.efConstruction = efc
    index.add(x)
    faiss.write_index(index, index_path)
    print(f"{time.perf_counter() - t0:.3f}")


def search(index_path, q_path, metric, ef, k, out_path):
    import faiss
    t0 = time.perf_counter()
    index = faiss.read_index(index_path)
    index.hnsw.efSearch = ef
    _, ids = index.search(prepared(q_path, metric), k)
    t1 = time.perf_counter()
    np.save(out_path, ids)
    print(f"{t1 - t0:.3f}")


def recall(answer_path, truth_path):
    exact = np.load(truth_path)
    if answer_path.endswith(".npy"):
        found = [set(row.tolist()) for row in np.load(answer_path)]
    else:
        found = [{h["index"] for h in json.loads(line)["hits"]} for line in open(answer_path)]
    hits = sum(len(f & set(t.tolist())) for f, t in zip(found, exact))
    print(f"{hits / exact.size:.3f}")


def main(argv):
    cmd, a = argv[1], argv[2:]
    if cmd == "data":
        data(a[0], int(a[1]), int(a[2]), int(a[3]), a[4])
    elif cmd == "truth":
        truth(a[0], a[1], a[2], int(a[3]), a[4])
    elif cmd == "build":
        build(a[0], a[1], int(a[2]), int(a[3]), a[4])
    elif cmd == "search":
        search(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5])
    elif cmd == "recall":
        recall(a[0], a[1])
    else:
        sys.exit(f"hnsw_peer.py: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
