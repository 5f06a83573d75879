#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The baseline of bench/redis_bench.sh: redis-py (with the hiredis parser) writing the same
# keys and bytes as `vstash ingest` into a redis profile: per 256-row chunk one sample blob
# (SET), one rows hash (slot -> u32 id length + id), the ids hash (id -> index) and a manifest,
# pipelined per batch. Prints one JSON line: rows, seconds, rows_per_second.
#   redis_py_ingest.py FILE.npy PORT [BATCH_ROWS]
import json
import struct
import sys
import time

import numpy as np
import redis

CHUNK = 256


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    batch_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    data = np.load(path, mmap_mode="r")
    n, dim = data.shape
    r = redis.Redis(host="127.0.0.1", port=port)
    assert redis.utils.HIREDIS_AVAILABLE, "python3-hiredis is not installed"
    base = "py:ds:{bench}:inc0:"
    t0 = time.perf_counter()
    r.hset("py:ds:{bench}:manifest", mapping={"spec": json.dumps({"dtype": "float32", "row_shape": [dim]}),
                                               "inc": "inc0", "next_index": 0, "nchunks": 0, "gen": 1})
    for first in range(0, n, batch_rows):
        last = min(n, first + batch_rows)
        block = np.ascontiguousarray(data[first:last])
        pipe = r.pipeline(transaction=True)  # MULTI/EXEC, as vstash writes a batch atomically
        ids = {}
        for c0 in range(first, last, CHUNK):
            c1 = min(last, (c0 // CHUNK + 1) * CHUNK)
            chunk = c0 // CHUNK
            blob = block[c0 - first:c1 - first].tobytes()
            if c1 - c0 == CHUNK:
                pipe.set(f"{base}chunk:{chunk}", blob)
            else:
                pipe.setrange(f"{base}chunk:{chunk}", (c0 % CHUNK) * dim * 4, blob)
            records = {"_": ""}
            for i in range(c0, c1):
                sid = str(i).encode()
                records[str(i % CHUNK)] = struct.pack("<I", len(sid)) + sid
                ids[sid] = i
            pipe.hset(f"{base}rows:{chunk}", mapping=records)
        items = list(ids.items())
        for k in range(0, len(items), 1024):
            pipe.hset(f"{base}ids", mapping=dict(items[k:k + 1024]))
        nchunks = (last + CHUNK - 1) // CHUNK
        pipe.hset("py:ds:{bench}:manifest", mapping={"next_index": last, "nchunks": nchunks})
        pipe.hincrby("py:ds:{bench}:manifest", "gen", 1)
        pipe.execute()
    secs = time.perf_counter() - t0
    print(json.dumps({"rows": n, "seconds": secs, "rows_per_second": n / secs}))


if __name__ == "__main__":
    main()
