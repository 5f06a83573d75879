#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The baseline of bench/redis_bench.sh: redis-py (with the hiredis parser) writing the same
# keys and bytes as `vstash ingest` into a redis profile: per 256-row chunk one sample blob
# (SET) and one records value (SET: "R", u16 count, then per row u8 slot, u32 length and the
# record, u32 id length + id), plus the ids hash's sentinel and a manifest with ids_from 0,
# pipelined per batch. Like vstash, it writes no id -> index field per row: vstash adds those
# at the first lookup by id, which an ingest into a new dataset does not make (see "Lazy ids
# index" in backends/redis/redisbackend.cpp). Prints one JSON line: rows, seconds, rows_per_second.
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
                                               "inc": "inc0", "next_index": 0, "nchunks": 0, "gen": 1, "layout": "2",
                                               "ids_from": 0})
    r.hset(f"{base}ids", "", "")
    parts = {}  # chunk -> its entries so far, for a chunk a batch ends inside
    for first in range(0, n, batch_rows):
        last = min(n, first + batch_rows)
        block = np.ascontiguousarray(data[first:last])
        pipe = r.pipeline(transaction=True)  # MULTI/EXEC, as vstash writes a batch atomically
        c1 = first
        while c1 < last:  # chunk by chunk: a batch may start and end inside one
            c0, c1 = c1, min(last, (c1 // CHUNK + 1) * CHUNK)
            chunk = c0 // CHUNK
            blob = block[c0 - first:c1 - first].tobytes()
            if c1 - c0 == CHUNK:
                pipe.set(f"{base}chunk:{chunk}", blob)
            else:
                pipe.setrange(f"{base}chunk:{chunk}", (c0 % CHUNK) * dim * 4, blob)
            # A chunk split across two batches gets its records in two parts, as vstash reads
            # the first part back and rewrites the value whole.
            entries = [] if c0 % CHUNK == 0 else parts.pop(chunk)
            for i in range(c0, c1):
                sid = str(i).encode()
                entries.append(struct.pack("<BII", i % CHUNK, 4 + len(sid), len(sid)) + sid)
            if c1 % CHUNK != 0:
                parts[chunk] = entries
            pipe.set(f"{base}rows:{chunk}", b"R" + struct.pack("<H", len(entries)) + b"".join(entries))
        nchunks = (last + CHUNK - 1) // CHUNK
        pipe.hset("py:ds:{bench}:manifest", mapping={"next_index": last, "nchunks": nchunks})
        pipe.hincrby("py:ds:{bench}:manifest", "gen", 1)
        pipe.execute()
    secs = time.perf_counter() - t0
    print(json.dumps({"rows": n, "seconds": secs, "rows_per_second": n / secs}))


if __name__ == "__main__":
    main()
