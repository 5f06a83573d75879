#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The scripts a user would write instead of `vstash batch --stream`, for bench/training_bench.sh:
#   training_peers.py redis load|epoch PORT PASSWORD DATA.npy LABELS.npy BATCH
#       redis-py + hiredis, one key per row (vector bytes + int64 label), one MGET per batch
#   training_peers.py pg load|epoch DSN DATA.npy LABELS.npy BATCH
#       psycopg3, table peer(idx bigint primary key, vec bytea, label bigint),
#       SELECT idx, vec, label ... WHERE idx = ANY(%s) per batch, binary results
#   training_peers.py qdrant load|epoch URL API_KEY DATA.npy LABELS.npy BATCH
#       requests, collection "peer" (id = idx, payload label), POST /points {ids} per batch
#   training_peers.py pinecone load|epoch URL API_KEY DATA.npy LABELS.npy BATCH
#       requests, index "peer" (id = idx, metadata label), GET /vectors/fetch?ids=.. per batch
#   (the official JS clients are the REST stores' peers by the project's rules; they are not
#   installed here, so the peer is the Python requests loop a user would write, same batching)
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


def ordered_arrays(idx, by_id, dim):
    """The batch's vectors and labels in the batch's order from {idx: (vector, label)}."""
    x = np.array([by_id[int(i)][0] for i in idx], dtype=np.float32).reshape(len(idx), dim)
    y = np.array([by_id[int(i)][1] for i in idx], dtype=np.int64)
    return x, y


def qdrant_peer(mode, url, key, data_path, labels_path, batch):
    import requests
    s = requests.Session()
    s.headers["api-key"] = key
    data = np.load(data_path, mmap_mode="r")
    n, dim = data.shape
    base = f"{url}/collections/peer"
    if mode == "load":
        labels = np.load(labels_path)
        s.delete(base)
        s.put(base, json={"vectors": {"size": dim, "distance": "Euclid"}}).raise_for_status()
        for b in range(0, n, 256):
            points = [{"id": i, "vector": data[i].tolist(), "payload": {"label": int(labels[i])}}
                      for i in range(b, min(n, b + 256))]
            s.put(f"{base}/points?wait=true", json={"points": points}).raise_for_status()
        return 0
    total = 0
    for idx in batches(n, batch):
        r = s.post(f"{base}/points", json={"ids": idx.tolist(), "with_vector": True, "with_payload": True})
        r.raise_for_status()
        by_id = {p["id"]: (p["vector"], p["payload"]["label"]) for p in r.json()["result"]}
        x, y = ordered_arrays(idx, by_id, dim)
        total += x.shape[0] + 0 * y.shape[0]
    return total


def pinecone_peer(mode, url, key, data_path, labels_path, batch):
    import time
    import requests
    s = requests.Session()
    s.headers.update({"Api-Key": key, "X-Pinecone-Api-Version": "2025-10"})
    data = np.load(data_path, mmap_mode="r")
    n, dim = data.shape
    if mode == "load":
        labels = np.load(labels_path)
        s.delete(f"{url}/indexes/peer")
        s.post(f"{url}/indexes", json={"name": "peer", "dimension": dim, "metric": "euclidean",
                                       "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}}).raise_for_status()
    deadline = time.monotonic() + 60
    while not (d := s.get(f"{url}/indexes/peer").json())["status"]["ready"]:
        if time.monotonic() > deadline:
            sys.exit("training_peers: the peer index is not ready after 60 s")
        time.sleep(0.05)
    host = "http://" + d["host"]
    if mode == "load":
        for b in range(0, n, 100):
            vectors = [{"id": str(i), "values": data[i].tolist(), "metadata": {"label": int(labels[i])}}
                       for i in range(b, min(n, b + 100))]
            s.post(f"{host}/vectors/upsert", json={"vectors": vectors, "namespace": "peer"}).raise_for_status()
        while s.post(f"{host}/describe_index_stats", json={}).json()["namespaces"].get("peer", {}).get("vectorCount") != n:
            if time.monotonic() > deadline:
                sys.exit("training_peers: the peer's rows are not visible after 60 s")
            time.sleep(0.05)
        return 0
    total = 0
    for idx in batches(n, batch):
        r = s.get(f"{host}/vectors/fetch", params={"ids": [str(i) for i in idx], "namespace": "peer"})
        r.raise_for_status()
        by_id = {int(k): (v["values"], v["metadata"]["label"]) for k, v in r.json()["vectors"].items()}
        x, y = ordered_arrays(idx, by_id, dim)
        total += x.shape[0] + 0 * y.shape[0]
    return total


if __name__ == "__main__":
    kind, mode = sys.argv[1], sys.argv[2]
    if kind == "redis":
        rows = redis_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    elif kind == "qdrant":
        rows = qdrant_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    elif kind == "pinecone":
        rows = pinecone_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    else:
        rows = pg_peer(mode, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    if mode == "epoch":
        print(rows)
