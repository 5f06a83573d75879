#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The scripts a user would write instead of `vstash batch --stream`, for bench/training_bench.sh:
#   training_peers.py redis load|epoch PORT PASSWORD DATA.npy LABELS.npy BATCH
#       redis-py + hiredis, one key per row (vector bytes + int64 label), one MGET per batch
#   training_peers.py pg load|epoch DSN DATA.npy LABELS.npy BATCH
#       psycopg3, table peer(idx bigint primary key, vec bytea, label bigint),
#       SELECT idx, vec, label ... WHERE idx = ANY(%s) per batch, binary results
# "epoch" reads one shuffled epoch (numpy permutation, seed 1) into numpy arrays and prints
# the rows read; "load" stores the rows first (not timed by the bench).
import sys

import numpy as np


def batches(n, batch):
    order = np.random.default_rng(1).permutation(n)
    for b in range(0, n, batch):
        yield order[b:b + batch]


def redis_peer(mode, port, password, data_path, labels_path, batch):
    import redis
    r = redis.Redis(host="127.0.0.1", port=int(port), password=password)
    data = np.load(data_path, mmap_mode="r")
    n, dim = data.shape
    if mode == "load":
        labels = np.load(labels_path)
        p = r.pipeline(transaction=False)
        for i in range(n):
            p.set(f"peer:{i}", data[i].tobytes() + labels[i].tobytes())
            if i % 5000 == 4999:
                p.execute()
        p.execute()
        return 0
    width = dim * 4 + 8
    total = 0
    for idx in batches(n, batch):
        raw = np.frombuffer(b"".join(r.mget([f"peer:{i}" for i in idx])), dtype=np.uint8).reshape(len(idx), width)
        x = raw[:, :dim * 4].copy().view(np.float32)
        y = raw[:, dim * 4:].copy().view(np.int64).ravel()
        total += x.shape[0] + 0 * y.shape[0]
    return total


def pg_peer(mode, dsn, data_path, labels_path, batch):
    import psycopg
    data = np.load(data_path, mmap_mode="r")
    n, dim = data.shape
    with psycopg.connect(dsn) as conn:
        if mode == "load":
            labels = np.load(labels_path)
            conn.execute("DROP TABLE IF EXISTS peer")
            conn.execute("CREATE TABLE peer (idx bigint PRIMARY KEY, vec bytea NOT NULL, label bigint NOT NULL)")
            with conn.cursor().copy("COPY peer (idx, vec, label) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "bytea", "int8"])
                for i in range(n):
                    copy.write_row((i, data[i].tobytes(), int(labels[i])))
            return 0
        total = 0
        cur = conn.cursor(binary=True)
        for idx in batches(n, batch):
            rows = cur.execute("SELECT idx, vec, label FROM peer WHERE idx = ANY(%s)", [idx.tolist()]).fetchall()
            where = {r[0]: r for r in rows}
            ordered = [where[int(i)] for i in idx]
            x = np.frombuffer(b"".join(r[1] for r in ordered), dtype=np.float32).reshape(len(idx), dim)
            y = np.array([r[2] for r in ordered], dtype=np.int64)
            total += x.shape[0] + 0 * y.shape[0]
        return total


if __name__ == "__main__":
    kind, mode = sys.argv[1], sys.argv[2]
    if kind == "redis":
        rows = redis_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    else:
        rows = pg_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    if mode == "epoch":
        print(rows)
