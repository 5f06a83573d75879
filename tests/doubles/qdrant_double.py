#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A strict protocol double of the Qdrant REST API (the subset vstash uses), for tests.

It follows shared/specs/qdrant-openapi.json (v1.19; /points/search from the v1.18 document) and
shared/specs/README.md field by field; the operations it checks are read from qdrant_spec.json,
extracted from those documents by make_qdrant_spec.py, so it runs without ../shared:
  * every request is matched against the spec's operations: an unknown path is 404, a known path
    with another method 405, a query parameter the operation does not declare, a missing required
    body field or an unknown top-level body field is 400 ("Format error in JSON body: ..."), and
    each such request is also recorded as a violation (GET /__admin/violations);
  * envelopes {"result","status":"ok","time","usage"} and {"status":{"error"},"time","result":null};
    401 in plain text without the api key; 404 for a missing collection or point; 409 for an
    existing collection; 422 for validation errors; 400 for a non-UUID string id, a vector of the
    wrong size, NaN/Infinity tokens, and bodies over the request limit (32 MiB by default);
  * writes honour `wait`: with wait=false (the default) the reply is "acknowledged" and the change
    becomes visible only after --apply-delay-ms; with wait=true it is applied before the reply
    ("completed");
  * distributed collections: shard_number, replication_factor, write_consistency_factor (uint32
    >= 1), sharding_method and vectors.on_disk are checked at creation and shown by GET
    /collections/{c}; the `consistency` and `ordering` query parameters must hold the spec's
    values; on a custom-sharded collection every point operation must carry an existing
    `shard_key` (reads too: stricter than the server, which then reads every shard), and on an
    auto-sharded one none may;
  * strict mode (PATCH /collections/{c} {"strict_mode_config": {...}}) refuses filters on payload
    keys without a payload index with Qdrant's 400 "Index required but not found";
  * exact scoring (float32 storage; Cosine normalises on insert; Euclid is the L2 distance).
Fault injection (no api key needed): POST /__admin/faults with a list or one object of
  {"status": 503|429|..., "retry_after": "0", "count": N, "path_contains": "...", "method": "PUT",
   "drop": true (close the connection without a reply), "delay_ms": 200 (slow reply),
   "truncate": true (a 200 whose Content-Length is larger than its body, then close),
   "malformed": VALUE (a 200 with VALUE as the whole JSON body; the request is not applied),
   "retry_after_date": N (with a status: Retry-After as an HTTP date N seconds ahead)}
and GET /__admin/log (every request: method, path, body bytes, status), POST /__admin/reset.
Run: qdrant_double.py --port P [--api-key K] [--version 1.19.0] [--max-request-bytes N]
                      [--apply-delay-ms MS] [--log FILE] [--sink-upserts]
                      [--port-file F] [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
     (--port 0: the kernel picks; see doublenet.py)
Only the Python standard library and numpy.
"""
import argparse
import email.utils
import json
import math
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from doublenet import add_listen_args, hang_up, listening, send_cut_short

# What the double checks, extracted from the official spec by make_qdrant_spec.py (committed).
SPEC_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qdrant_spec.json")
DEFAULT_LIMIT = 32 * 1024 * 1024
DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
FIELD_SCHEMAS = ("keyword", "integer", "float", "bool", "geo", "text", "datetime", "uuid")


class ApiError(Exception):
    def __init__(self, status, message, plain=False, headers=None):
        super().__init__(message)
        self.status, self.message, self.plain, self.headers = status, message, plain, headers or {}


def bad(message):
    return ApiError(400, message)


# --------------------------------------------------------------------------------------------
# The spec: operations, parameters and top-level body fields.

class Spec:
    """The operations of qdrant_spec.json (written by make_qdrant_spec.py from the official spec)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.ops = []  # (regex, template, method, operation)
        for op in doc["operations"]:
            rx = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", op["path"]) + "$")
            self.ops.append((rx, op["path"], op["method"], op))

    def find(self, method, path):
        """The operation for method+path, or raises 404/405 like the server."""
        templates = [o for o in self.ops if o[0].match(path)]
        if not templates:
            raise ApiError(404, "Not Found", plain=True)
        # A literal segment beats a {param} (".../points/scroll" is not ".../points/{id}").
        templates.sort(key=lambda o: o[1].count("{"))
        for o in templates:
            if o[2] == method:
                return o
        raise ApiError(405, "Method Not Allowed", plain=True)

    def check(self, op, query, body):
        """Violations of the operation's declared parameters and body fields (list of text)."""
        _, template, method, operation = op
        problems = []
        declared = set(operation["query"])
        for name in query:
            if name not in declared:
                problems.append(f"query parameter `{name}` is not declared by {method} {template}")
        rb = operation.get("body")
        if rb is None:
            return problems
        if body is None:
            if rb["required"]:
                problems.append("missing body")
            return problems
        alts = rb["alternatives"]
        if not alts or not isinstance(body, dict):
            return problems
        best = None
        for alt in alts:
            p = []
            for r in alt["required"]:
                if r not in body:
                    p.append(f"missing field `{r}`")
            props = alt["properties"]
            for k in body:
                if props and k not in props:
                    p.append(f"unknown field `{k}`")
            if best is None or len(p) < len(best):
                best = p
        return problems + (best or [])


# --------------------------------------------------------------------------------------------
# Points, payload paths and filters.

def check_search_params(params):
    """SearchParams (spec components.schemas.SearchParams): null or an object of known fields,
    hnsw_ef a whole number >= 0 or null, exact and indexed_only booleans. The double scans
    exactly either way, so an accepted value changes no result."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise bad("Format error in JSON body: params: invalid type: expected struct SearchParams")
    for k, v in params.items():
        if k not in ("hnsw_ef", "exact", "quantization", "indexed_only", "acorn"):
            raise bad(f"Format error in JSON body: unknown field `{k}` in params")
        if k == "hnsw_ef" and v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise bad(f"Format error in JSON body: params.hnsw_ef: invalid value: {json.dumps(v)}, expected usize")
        if k in ("exact", "indexed_only") and not isinstance(v, bool):
            raise bad(f"Format error in JSON body: params.{k}: invalid type: {json.dumps(v)}, expected a boolean")


def parse_point_id(value):
    if isinstance(value, bool):
        raise bad(f"Format error in JSON body: value {json.dumps(value)} is not a valid point ID, valid values are "
                  "either an unsigned integer or a UUID")
    if isinstance(value, int):
        if 0 <= value < 2 ** 64:
            return value
    elif isinstance(value, str):
        try:
            text = value
            if text.lower().startswith("urn:uuid:"):
                text = text[9:]
            if len(text) in (32, 36, 38):
                return str(uuid.UUID(text))
        except ValueError:
            pass
    raise bad(f"Format error in JSON body: value {json.dumps(value)} is not a valid point ID, valid values are "
              "either an unsigned integer or a UUID")


def id_order(pid):
    return (0, pid, "") if isinstance(pid, int) else (1, 0, pid)


PATH_TOKEN = re.compile(r'(?:([A-Za-z0-9_-]+)|"([^"]+)")((?:\[\d*\])*)')


def parse_path(key):
    """A payload key path as Qdrant's JSON path reads it: segments joined by '.', each plain
    ([A-Za-z0-9_-]+) or double-quoted ("a.b" is one key, no '"' inside), optionally followed by
    [] (every element) or [N] (one element). A malformed path is a 400."""
    parts, pos = [], 0
    while True:
        m = PATH_TOKEN.match(key, pos)
        if not m:
            raise bad(f"Format error in JSON body: invalid payload key path `{key}`")
        name = m.group(1) if m.group(1) is not None else m.group(2)
        parts.append((name, re.findall(r"\[(\d*)\]", m.group(3))))
        pos = m.end()
        if pos == len(key):
            return parts
        if key[pos] != ".":
            raise bad(f"Format error in JSON body: invalid payload key path `{key}`")
        pos += 1


def path_values(payload, key):
    """Values at a key path ("a.b", 'a."b.c"', "arr[].c", "arr[0]"); arrays at the end are
    flattened (a condition on an array field looks at its elements, as in Qdrant)."""
    values = [payload]
    for name, brackets in parse_path(key):
        nxt = []
        for v in values:
            for it in (v if isinstance(v, list) else [v]):
                if isinstance(it, dict) and name in it:
                    nxt.append(it[name])
        for b in brackets:
            picked = []
            for v in nxt:
                if isinstance(v, list):
                    if b == "":
                        picked.extend(v)
                    elif int(b) < len(v):
                        picked.append(v[int(b)])
            nxt = picked
        values = nxt
    out = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out, values


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def same_match(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    # integer match: both must be integers in the payload sense (2019.0 is a float)
    return isinstance(a, int) and isinstance(b, int) and a == b


class FilterEval:
    def __init__(self, collection, strict_kind):
        self.collection = collection
        self.strict_kind = strict_kind  # None, "retrieve" or "update"

    def keys(self, f, out):
        if isinstance(f, list):
            for c in f:
                self.keys(c, out)
            return
        if not isinstance(f, dict):
            raise bad("Format error in JSON body: filter condition must be an object")
        for clause in ("must", "should", "must_not"):
            if clause in f and f[clause] is not None:
                self.keys(f[clause], out)
        if f.get("min_should"):
            self.keys(f["min_should"].get("conditions", []), out)
        if "key" in f and ("match" in f or "range" in f or "values_count" in f):
            out.append(f["key"])
        if "is_empty" in f:
            out.append(f["is_empty"]["key"])
        if "is_null" in f:
            out.append(f["is_null"]["key"])

    def check_strict(self, f):
        cfg = self.collection.strict
        if not self.strict_kind or not cfg.get("enabled"):
            return
        flag = "unindexed_filtering_retrieve" if self.strict_kind == "retrieve" else "unindexed_filtering_update"
        if cfg.get(flag, True):
            return
        keys = []
        self.keys(f, keys)
        for k in keys:
            if k not in self.collection.indexes:
                raise bad(f'Bad request: Index required but not found for "{k}" of one of the following types: '
                          "[keyword, integer, float]. Help: Create an index for this key or use a different filter.")

    def matches(self, f, point):
        if f is None:
            return True
        if isinstance(f, list):
            return all(self.cond(c, point) for c in f)
        return self.filter(f, point)

    def clause(self, value):
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def filter(self, f, point):
        if not isinstance(f, dict):
            raise bad("Format error in JSON body: filter must be an object")
        for k in f:
            if k not in ("must", "should", "must_not", "min_should"):
                raise bad(f"Format error in JSON body: unknown field `{k}` in filter")
        if not all(self.cond(c, point) for c in self.clause(f.get("must"))):
            return False
        should = self.clause(f.get("should"))
        if should and not any(self.cond(c, point) for c in should):
            return False
        if any(self.cond(c, point) for c in self.clause(f.get("must_not"))):
            return False
        ms = f.get("min_should")
        if ms:
            if sum(1 for c in ms.get("conditions", []) if self.cond(c, point)) < ms.get("min_count", 1):
                return False
        return True

    def cond(self, c, point):
        if not isinstance(c, dict):
            raise bad("Format error in JSON body: condition must be an object")
        if any(k in c for k in ("must", "should", "must_not", "min_should")):
            return self.filter(c, point)
        if "has_id" in c:
            return point.id in {parse_point_id(x) for x in c["has_id"]}
        if "is_empty" in c:
            flat, raw = path_values(point.payload, c["is_empty"]["key"])
            return all(v is None or v == [] for v in raw) if raw else True
        if "is_null" in c:
            _, raw = path_values(point.payload, c["is_null"]["key"])
            return any(v is None for v in raw)
        if "has_vector" in c:
            return True
        if "key" not in c:
            raise bad(f"Format error in JSON body: data did not match any variant of untagged enum Condition: {json.dumps(c)[:80]}")
        values, _ = path_values(point.payload, c["key"])
        if "match" in c:
            m = c["match"]
            if "value" in m:
                x = m["value"]
                if is_number(x) and isinstance(x, float):
                    raise bad("Format error in JSON body: data did not match any variant of untagged enum Match")
                return any(same_match(v, x) for v in values)
            if "any" in m:
                return any(same_match(v, x) for v in values for x in m["any"])
            if "except" in m:
                return bool(values) and not any(same_match(v, x) for v in values for x in m["except"])
            if "text" in m:
                return any(isinstance(v, str) and m["text"] in v for v in values)
            raise bad("Format error in JSON body: data did not match any variant of untagged enum Match")
        if "range" in c:
            r = c["range"]
            for op in r:
                if op not in ("gt", "gte", "lt", "lte"):
                    raise bad(f"Format error in JSON body: unknown field `{op}` in range")

            def ok(v):
                if not is_number(v):
                    return False
                return ((r.get("gt") is None or v > r["gt"]) and (r.get("gte") is None or v >= r["gte"]) and
                        (r.get("lt") is None or v < r["lt"]) and (r.get("lte") is None or v <= r["lte"]))
            return any(ok(v) for v in values)
        if "values_count" in c:
            r = c["values_count"]
            n = len(values)
            return ((r.get("gt") is None or n > r["gt"]) and (r.get("gte") is None or n >= r["gte"]) and
                    (r.get("lt") is None or n < r["lt"]) and (r.get("lte") is None or n <= r["lte"]))
        raise bad(f"Format error in JSON body: unsupported condition {json.dumps(c)[:80]}")


UINT32_MAX = 2**32 - 1
READ_CONSISTENCY = ("majority", "quorum", "all")  # ReadConsistencyType; or an integer >= 1
WRITE_ORDERING = ("weak", "medium", "strong")      # WriteOrdering


def collection_params(body, vectors):
    """CreateCollection's distribution fields, checked as the spec types them: shard_number,
    replication_factor, write_consistency_factor uint32 >= 1 or null; sharding_method
    "auto" | "custom" or null; vectors.on_disk boolean or null (VectorParams)."""
    params = {}
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool):
            raise bad(f"Format error in JSON body: {key}: invalid type: {json.dumps(v)}, expected u32")
        if not 1 <= v <= UINT32_MAX:
            raise ApiError(422, f"Validation error in JSON body: [{key}: value {v} invalid, must be 1 or more]")
        params[key] = v
    method = body.get("sharding_method")
    if method is not None and method not in ("auto", "custom"):
        raise bad(f"Format error in JSON body: sharding_method: unknown variant `{method}`, expected `auto` or `custom`")
    params["sharding_method"] = method
    on_disk = vectors.get("on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise bad(f"Format error in JSON body: vectors.on_disk: invalid type: {json.dumps(on_disk)}, expected a boolean")
    params["on_disk"] = on_disk
    if params.get("write_consistency_factor", 1) > params.get("replication_factor", 1):
        raise bad("Wrong input: write_consistency_factor can't be higher than replication_factor")
    return params


def check_query_values(query):
    """The values of `consistency` (ReadConsistency: an integer >= 1, majority, quorum, all) and
    `ordering` (WriteOrdering: weak, medium, strong), where an operation declares them."""
    for v in query.get("consistency", []):
        if not (v in READ_CONSISTENCY or (v.isdigit() and int(v) >= 1)):
            raise bad(f"Query deserialize error: consistency: data did not match any variant of untagged enum "
                      f"ReadConsistency: `{v}`")
    for v in query.get("ordering", []):
        if v not in WRITE_ORDERING:
            raise bad(f"Query deserialize error: ordering: unknown variant `{v}`, expected one of `weak`, `medium`, "
                      "`strong`")


class Point:
    __slots__ = ("id", "vector", "payload", "version")

    def __init__(self, pid, vector, payload, version):
        self.id, self.vector, self.payload, self.version = pid, vector, payload, version


class Collection:
    def __init__(self, name, size, distance, params=None):
        self.name, self.size, self.distance = name, size, distance
        self.points = {}
        self.indexes = {}  # field -> data_type
        self.strict = {"enabled": False}
        self.version = 0
        self.pending = []  # (due, fn)
        # CollectionParams as created (shard_number, replication_factor, ...; spec defaults 1).
        self.params = dict(params or {})
        self.shards = {}  # custom sharding: shard key -> Collection holding that key's points

    def custom(self):
        return self.params.get("sharding_method") == "custom"

    def apply_due(self, everything=False):
        now = time.monotonic()
        keep = []
        for due, fn in self.pending:
            if everything or due <= now:
                fn()
            else:
                keep.append((due, fn))
        self.pending = keep


# --------------------------------------------------------------------------------------------
# The server state and the operations.

def with_payload_of(payload, selector):
    if selector is None or selector is False:
        return None
    if selector is True:
        return payload
    if isinstance(selector, list):
        return {k: payload[k] for k in selector if k in payload}
    if isinstance(selector, dict):
        if "include" in selector:
            return {k: payload[k] for k in selector["include"] if k in payload}
        if "exclude" in selector:
            return {k: v for k, v in payload.items() if k not in selector["exclude"]}
    raise bad("Format error in JSON body: data did not match any variant of untagged enum WithPayloadInterface")


def vector_json(v):
    return [float(x) for x in v]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.collections = {}
        self.faults = []
        self.log = []
        self.violations = []
        self.op_id = 0

    # -- helpers --------------------------------------------------------------------------
    def collection(self, name):
        c = self.collections.get(name)
        if c is None:
            raise ApiError(404, f"Not found: Collection `{name}` doesn't exist!")
        c.apply_due()
        return c

    def write(self, c, query, fn):
        """Applies fn now (wait=true) or later (wait=false) and returns an UpdateResult."""
        wait = query.get("wait", ["false"])[0]
        if wait not in ("true", "false"):
            raise bad(f"Query deserialize error: wait: provided string was not `true` or `false`")
        self.op_id += 1
        if wait == "true":
            c.apply_due(everything=True)
            fn()
            return {"operation_id": self.op_id, "status": "completed"}
        c.pending.append((time.monotonic() + self.args.apply_delay_ms / 1000.0, fn))
        return {"operation_id": self.op_id, "status": "acknowledged"}

    def make_vector(self, c, v):
        if isinstance(v, dict):
            if "" in v and len(v) == 1:
                v = v[""]
            else:
                raise bad("Wrong input: Not existing vector name error: " + ",".join(v.keys()))
        if not isinstance(v, list) or not all(is_number(x) for x in v):
            raise bad("Format error in JSON body: data did not match any variant of untagged enum VectorStruct")
        if len(v) != c.size:
            raise bad(f"Wrong input: Vector dimension error: expected dim: {c.size}, got {len(v)}")
        arr = np.asarray(v, dtype=np.float32)
        if c.distance == "Cosine":
            norm = float(np.linalg.norm(arr.astype(np.float64)))
            if norm > 0:
                arr = (arr.astype(np.float64) / norm).astype(np.float32)
        return arr

    def selector_points(self, c, body, strict_kind):
        """Points named by {"points":[..]} or {"filter":{..}}."""
        if body.get("points") is not None:
            return [parse_point_id(x) for x in body["points"]], True
        if body.get("filter") is not None:
            fe = FilterEval(c, strict_kind)
            fe.check_strict(body["filter"])
            return [p.id for p in c.points.values() if fe.matches(body["filter"], p)], False
        raise bad("Format error in JSON body: data did not match any variant of untagged enum PointsSelector")

    def record(self, p, with_payload, with_vector, score=None):
        r = {"id": p.id, "payload": with_payload_of(p.payload, with_payload),
             "vector": vector_json(p.vector) if with_vector else None, "shard_key": None, "order_value": None}
        if score is not None:
            r = {"id": p.id, "version": p.version, "score": score, "payload": r["payload"], "vector": r["vector"],
                 "shard_key": None, "order_value": None}
        return r

    def filtered(self, c, f, strict_kind="retrieve"):
        fe = FilterEval(c, strict_kind)
        if f is not None:
            fe.check_strict(f)
        return [p for p in c.points.values() if fe.matches(f, p)]

    # -- collections -----------------------------------------------------------------------
    def create_collection(self, name, body):
        if not name or len(name) > 255 or any(ch in name for ch in '<>:"/\\|?*\0\x1f'):
            raise ApiError(422, f"Validation error in path parameters: collection name `{name}` is not valid")
        if name in self.collections:
            raise ApiError(409, f"Wrong input: Collection `{name}` already exists!")
        vectors = (body or {}).get("vectors")
        if not isinstance(vectors, dict) or "size" not in vectors or "distance" not in vectors:
            raise bad("Format error in JSON body: vectors: data did not match any variant of untagged enum VectorsConfig")
        size, distance = vectors["size"], vectors["distance"]
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 65536:
            raise ApiError(422, f"Validation error in JSON body: [vectors.size: value {size} invalid, must be from 1 to 65536]")
        if distance not in DISTANCES:
            raise bad(f"Format error in JSON body: vectors.distance: unknown variant `{distance}`, expected one of "
                      "`Cosine`, `Euclid`, `Dot`, `Manhattan`")
        c = Collection(name, size, distance, collection_params(body, vectors))
        if isinstance(body.get("strict_mode_config"), dict):
            c.strict.update(body["strict_mode_config"])
        self.collections[name] = c
        return True

    def collection_info(self, c):
        vectors = {"size": c.size, "distance": c.distance}
        if c.params.get("on_disk") is not None:
            vectors["on_disk"] = c.params["on_disk"]
        params = {"vectors": vectors, "shard_number": c.params.get("shard_number") or 1,
                  "replication_factor": c.params.get("replication_factor") or 1,
                  "write_consistency_factor": c.params.get("write_consistency_factor") or 1,
                  "on_disk_payload": True}
        if c.params.get("sharding_method") is not None:
            params["sharding_method"] = c.params["sharding_method"]
        return {
            "status": "yellow" if c.pending else "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": len(c.points) + sum(len(s.points) for s in c.shards.values()),
            "segments_count": 2,
            "config": {
                "params": params,
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                                "max_indexing_threads": 0, "on_disk": False},
                "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                     "default_segment_number": 0, "indexing_threshold": 20000,
                                     "flush_interval_sec": 5},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                "quantization_config": None,
                "strict_mode_config": c.strict,
            },
            "payload_schema": {k: {"data_type": t, "points": sum(1 for p in c.points.values()
                                                                 if path_values(p.payload, k)[0])}
                               for k, t in c.indexes.items()},
            "update_queue": {"length": len(c.pending)},
        }

    # -- the router ------------------------------------------------------------------------
    def handle(self, method, path, query, body):
        check_query_values(query)
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if method == "GET" and not parts:
            return "bare", {"title": "qdrant - vector search engine", "version": self.args.version,
                            "commit": "0000000000000000000000000000000000000000"}
        if parts and parts[0] in ("healthz", "livez", "readyz"):
            return "text", "healthz check passed"
        if parts == ["collections"] and method == "GET":
            return "ok", {"collections": [{"name": n} for n in sorted(self.collections)]}
        if len(parts) < 2 or parts[0] != "collections":
            raise ApiError(404, "Not Found", plain=True)
        name, rest = parts[1], parts[2:]
        if not rest:
            if method == "PUT":
                return "ok", self.create_collection(name, body)
            if method == "DELETE":
                return "ok", self.collections.pop(name, None) is not None
            c = self.collection(name)
            if method == "GET":
                return "ok", self.collection_info(c)
            if method == "PATCH":
                if isinstance((body or {}).get("strict_mode_config"), dict):
                    c.strict.update(body["strict_mode_config"])
                return "ok", True
        if rest == ["exists"]:
            return "ok", {"exists": name in self.collections}
        c = self.collection(name)
        if rest == ["index"] and method == "PUT":
            schema = body.get("field_schema")
            kind = schema.get("type") if isinstance(schema, dict) else schema
            if kind not in FIELD_SCHEMAS:
                raise bad(f"Format error in JSON body: field_schema: unknown variant `{kind}`")
            return "ok", self.write(c, query, lambda: c.indexes.__setitem__(body["field_name"], kind))
        if rest[0] == "shards":
            return "ok", self.shards_op(c, method, rest[1:], body or {})
        if rest[0] != "points":
            raise ApiError(404, "Not Found", plain=True)
        op = "/".join(rest[1:])
        return "ok", self.points_op(self.shard_of(c, body), method, op, query, body or {})

    # -- custom sharding: shard keys (PUT/GET /shards, POST /shards/delete) ---------------------
    def shards_op(self, c, method, rest, body):
        if method == "GET" and not rest:
            return {"shard_keys": [{"key": k} for k in c.shards]}
        key = body.get("shard_key")
        if not (isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool) and key >= 0)):
            raise bad("Format error in JSON body: shard_key: data did not match any variant of untagged enum ShardKey")
        if not c.custom():
            raise bad(f"Bad request: Shard key `{key}` cannot be used: collection `{c.name}` has auto sharding")
        if method == "PUT" and not rest:
            if key in c.shards:
                raise bad(f"Bad request: Shard key `{key}` already exists")
            sub = Collection(c.name, c.size, c.distance, c.params)
            sub.indexes, sub.strict = c.indexes, c.strict  # payload indexes and strict mode are the collection's
            c.shards[key] = sub
            return True
        if method == "POST" and rest == ["delete"]:
            if c.shards.pop(key, None) is None:
                raise bad(f"Bad request: Shard key `{key}` does not exist")
            return True
        raise ApiError(404, "Not Found", plain=True)

    def shard_of(self, c, body):
        """The collection a point operation acts on: on a custom-sharded collection, the shard of
        its body's `shard_key` (required, one existing key); elsewhere `shard_key` is refused."""
        key = (body or {}).get("shard_key")
        if isinstance(key, list) and len(key) == 1:
            key = key[0]
        if not c.custom():
            if key is not None:
                raise bad(f"Bad request: Shard key `{key}` cannot be used: collection `{c.name}` has auto sharding")
            return c
        if key is None:
            raise bad(f"Bad request: collection `{c.name}` has custom sharding: the request must name a shard_key")
        if isinstance(key, (list, dict)) or key not in c.shards:
            raise bad(f"Wrong input: Shard key `{json.dumps(key)}` does not exist in collection `{c.name}`")
        sub = c.shards[key]
        sub.apply_due()
        return sub

    def points_op(self, c, method, op, query, body):
        if op == "" and method == "PUT":
            return self.upsert(c, query, body)
        if op == "" and method == "POST":
            ids = [parse_point_id(x) for x in body["ids"]]
            wp, wv = body.get("with_payload", True), body.get("with_vector", False)
            return [self.record(c.points[i], wp, wv) for i in ids if i in c.points]
        if method == "GET" and op and "/" not in op:
            pid = parse_point_id(int(op) if op.isdigit() else op)
            if pid not in c.points:
                raise ApiError(404, f"Not found: No point with id {pid} found")
            return self.record(c.points[pid], True, True)
        if op == "delete":
            ids, _ = self.selector_points(c, body, "update")

            def apply():
                for i in ids:
                    c.points.pop(i, None)
            return self.write(c, query, apply)
        if op == "payload":
            ids, explicit = self.selector_points(c, body, "update")
            if not isinstance(body.get("payload"), dict):
                raise bad("Format error in JSON body: payload must be an object")
            missing = [i for i in ids if i not in c.points]
            if explicit and missing:
                raise ApiError(404, f"Not found: No point with id {missing[0]} found")
            new = body["payload"]

            def apply():
                for i in ids:
                    if i in c.points:
                        if method == "PUT":
                            c.points[i].payload = json.loads(json.dumps(new))
                        else:
                            c.points[i].payload.update(json.loads(json.dumps(new)))
            return self.write(c, query, apply)
        if op == "payload/delete":
            ids, _ = self.selector_points(c, body, "update")

            def apply():
                for i in ids:
                    if i in c.points:
                        for k in body["keys"]:
                            c.points[i].payload.pop(k, None)
            return self.write(c, query, apply)
        if op == "payload/clear":
            ids, _ = self.selector_points(c, body, "update")

            def apply():
                for i in ids:
                    if i in c.points:
                        c.points[i].payload = {}
            return self.write(c, query, apply)
        if op == "vectors" and method == "PUT":
            updates = [(parse_point_id(p["id"]), self.make_vector(c, p["vector"])) for p in body["points"]]
            for i, _ in updates:
                if i not in c.points:
                    raise ApiError(404, f"Not found: No point with id {i} found")

            def apply():
                for i, v in updates:
                    if i in c.points:
                        c.points[i].vector = v
            return self.write(c, query, apply)
        if op == "scroll":
            return self.scroll(c, body)
        if op == "count":
            return {"count": len(self.filtered(c, body.get("filter")))}
        if op == "query":
            return {"points": self.search(c, body, body.get("query"), modern=True)}
        if op == "search":
            return self.search(c, body, body.get("vector"), modern=False)
        raise ApiError(404, "Not Found", plain=True)

    def upsert(self, c, query, body):
        rows = []
        if "batch" in body:
            b = body["batch"]
            ids, vectors = b.get("ids", []), b.get("vectors", [])
            payloads = b.get("payloads") or [None] * len(ids)
            if not (len(ids) == len(vectors) == len(payloads)):
                raise bad("Wrong input: ids, vectors and payloads must have the same length")
            rows = list(zip(ids, vectors, payloads))
        else:
            for p in body["points"]:
                if "id" not in p or "vector" not in p:
                    raise bad("Format error in JSON body: points: missing field `id` or `vector`")
                rows.append((p["id"], p["vector"], p.get("payload")))
        parsed = []
        for pid, vec, payload in rows:
            if payload is not None and not isinstance(payload, dict):
                raise bad("Format error in JSON body: payload must be an object")
            parsed.append((parse_point_id(pid), self.make_vector(c, vec), payload or {}))

        def apply():
            c.version += 1
            for pid, vec, payload in parsed:
                c.points[pid] = Point(pid, vec, payload, c.version)
        return self.write(c, query, apply)

    def scroll(self, c, body):
        limit = body.get("limit") or 10
        if not isinstance(limit, int) or limit < 1:
            raise ApiError(422, "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]")
        points = self.filtered(c, body.get("filter"))
        wp, wv = body.get("with_payload", True), body.get("with_vector", False)
        order_by = body.get("order_by")
        if order_by is not None:
            if body.get("offset") is not None:
                raise bad("Bad request: Cannot use an `offset` when using `order_by`")
            key = order_by if isinstance(order_by, str) else order_by["key"]
            if key not in c.indexes:
                raise bad(f"Bad request: No range index for `order_by` key: `{key}`. Please create one to use "
                          "`order_by`.")
            desc = isinstance(order_by, dict) and order_by.get("direction") == "desc"
            keyed = [(v, p) for p in points for v in path_values(p.payload, key)[0] if is_number(v)]
            keyed.sort(key=lambda t: (t[0], id_order(t[1].id)), reverse=desc)
            return {"points": [self.record(p, wp, wv) for _, p in keyed[:limit]], "next_page_offset": None}
        points.sort(key=lambda p: id_order(p.id))
        if body.get("offset") is not None:
            start = id_order(parse_point_id(body["offset"]))
            points = [p for p in points if id_order(p.id) >= start]
        page = points[:limit]
        nxt = points[limit].id if len(points) > limit else None
        return {"points": [self.record(p, wp, wv) for p in page], "next_page_offset": nxt}

    def search(self, c, body, q, modern):
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 1:
            raise ApiError(422, "Validation error in JSON body: [limit: value invalid, must be 1 or larger]")
        check_search_params(body.get("params"))
        offset = body.get("offset") or 0
        if modern and isinstance(q, dict) and "nearest" in q:
            q = q["nearest"]
        if not modern and isinstance(q, dict) and "vector" in q:
            q = q["vector"]
        if isinstance(q, (int, str)) and not isinstance(q, bool):
            pid = parse_point_id(q)
            if pid not in c.points:
                raise ApiError(404, f"Not found: No point with id {pid} found")
            qv = c.points[pid].vector
        else:
            qv = self.make_vector(c, q)
        points = self.filtered(c, body.get("filter"))
        if not points:
            return []
        m = np.stack([p.vector for p in points]).astype(np.float64)
        qd = qv.astype(np.float64)
        if c.distance == "Euclid":
            scores = np.sqrt(((m - qd) ** 2).sum(axis=1))
            order = np.argsort(scores, kind="stable")
        elif c.distance == "Manhattan":
            scores = np.abs(m - qd).sum(axis=1)
            order = np.argsort(scores, kind="stable")
        else:
            scores = m @ qd
            order = np.argsort(-scores, kind="stable")
        threshold = body.get("score_threshold")
        out = []
        for i in order[offset:offset + limit]:
            s = float(scores[i])
            if threshold is not None and (s > threshold if c.distance in ("Euclid", "Manhattan") else s < threshold):
                continue
            out.append(self.record(points[i], body.get("with_payload", False), body.get("with_vector", False), s))
        return out


# --------------------------------------------------------------------------------------------
# HTTP.

def reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qdrant-double"
    # Headers and body go out in two writes; without TCP_NODELAY every keep-alive reply would
    # wait for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):  # quiet; the request log is the record
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def reply(self, status, body, content_type="application/json", headers=None, close=False):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self, method):
        state = self.server.state
        started = time.monotonic()
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        entry = {"method": method, "path": path, "query": url.query, "bytes": length, "status": 0, "t": time.time(),
                 "user_agent": self.headers.get("User-Agent")}
        if state.args.log_bodies and raw:
            entry["body"] = raw[:4096].decode("utf-8", errors="replace")

        if path.startswith("/__admin/"):
            return self.admin(method, path, raw)

        fault = self.take_fault(method, path)
        if fault:
            entry["fault"] = fault
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault.get("drop"):
                entry["status"] = "dropped"
                self.log(entry)
                hang_up(self)
                return
            if fault.get("truncate"):
                entry["status"] = "truncated"
                self.log(entry)
                send_cut_short(self, b'{"result":{"points":[],"next_page_offset":null},"status":"ok","time":0.0}')
                return
            if "malformed" in fault:
                entry["status"] = 200
                entry["malformed"] = True
                self.log(entry)
                return self.reply(200, json.dumps(fault["malformed"]))
            if fault.get("status"):
                headers = {}
                if fault.get("retry_after") is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                if fault.get("retry_after_date") is not None:
                    headers["Retry-After"] = email.utils.formatdate(time.time() + fault["retry_after_date"],
                                                                    usegmt=True)
                msg = {429: "Rate limiting exceeded: Write rate limit exceeded, retry later",
                       503: "Service unavailable: shard is temporarily unavailable"}.get(
                    fault["status"], f"Service internal error: injected fault {fault['status']}")
                entry["status"] = fault["status"]
                self.log(entry)
                return self.reply(fault["status"], json.dumps({"status": {"error": msg}, "time": 0.0, "result": None}),
                                  headers=headers)

        status, text, ctype, headers, close = 200, "", "application/json", {}, False
        try:
            if length > state.args.max_request_bytes:
                close = True
                raise bad(f"JSON payload ({length} bytes) is larger than allowed (limit: "
                          f"{state.args.max_request_bytes} bytes).")
            open_paths = path in ("/", "/healthz", "/livez", "/readyz")
            if state.args.api_key and not open_paths:
                key = self.headers.get("api-key")
                auth = self.headers.get("Authorization", "")
                if key is None and not auth:
                    raise ApiError(401, "Must provide an API key or an Authorization bearer token", plain=True)
                if key != state.args.api_key and auth != "Bearer " + state.args.api_key:
                    raise ApiError(401, "Invalid API key or JWT", plain=True)
            op = state.spec.find(method, path)
            if (state.args.sink_upserts and method == "PUT" and path.endswith("/points") and path.count("/") == 3
                    and not path.startswith("/collections/__")):
                # Benchmark mode: acknowledge upserts without parsing or storing them (except to
                # reserved "__..." collections such as vstash's catalog, which reads need).
                status, text = 200, json.dumps({"result": {"operation_id": 0, "status": "completed"},
                                                "status": "ok", "time": 0.0, "usage": None})
                entry["status"] = status
                self.log(entry)
                return self.reply(status, text)
            body = None
            if raw:
                if "json" not in (self.headers.get("Content-Type") or ""):
                    raise bad("Content type error: expected application/json")
                try:
                    body = json.loads(raw, parse_constant=reject_constant)
                except (ValueError, UnicodeDecodeError) as e:
                    raise bad(f"Format error in JSON body: {e}")
            problems = state.spec.check(op, query, body)
            if problems:
                with state.lock:
                    state.violations.append({"method": method, "path": path, "problems": problems})
                raise bad("Format error in JSON body: " + "; ".join(problems))
            with state.lock:
                kind, result = state.handle(method, path, query, body)
            if kind == "bare":
                text = json.dumps(result)
            elif kind == "text":
                text, ctype = result, "text/plain"
            else:
                text = json.dumps({"result": result, "status": "ok", "time": time.monotonic() - started,
                                   "usage": None})
        except ApiError as e:
            status, headers = e.status, e.headers
            if e.plain:
                text, ctype = e.message, "text/plain"
            else:
                text = json.dumps({"status": {"error": e.message}, "time": time.monotonic() - started, "result": None})
        except (KeyError, TypeError, AttributeError) as e:
            status = 400
            text = json.dumps({"status": {"error": f"Format error in JSON body: {type(e).__name__}: {e}"},
                               "time": 0.0, "result": None})
        entry["status"] = status
        self.log(entry)
        self.reply(status, text, ctype, headers, close)

    def take_fault(self, method, path):
        state = self.server.state
        with state.lock:
            for f in state.faults:
                if f.get("count", 1) <= 0:
                    continue
                if f.get("path_contains") and f["path_contains"] not in path:
                    continue
                if f.get("method") and f["method"] != method:
                    continue
                f["count"] = f.get("count", 1) - 1
                return dict(f)
        return None

    def log(self, entry):
        state = self.server.state
        with state.lock:
            state.log.append(entry)
            if len(state.log) > 200000:
                del state.log[:100000]
        if state.log_file:
            state.log_file.write(json.dumps(entry) + "\n")
            state.log_file.flush()

    def admin(self, method, path, raw):
        state = self.server.state
        with state.lock:
            if path == "/__admin/faults" and method == "POST":
                spec = json.loads(raw or b"[]")
                state.faults.extend(spec if isinstance(spec, list) else [spec])
                return self.reply(200, json.dumps({"faults": len(state.faults)}))
            if path == "/__admin/log":
                return self.reply(200, json.dumps(state.log))
            if path == "/__admin/violations":
                return self.reply(200, json.dumps(state.violations))
            if path == "/__admin/reset" and method == "POST":
                state.faults.clear()
                state.log.clear()
                state.violations.clear()
                return self.reply(200, "{}")
        return self.reply(404, "unknown admin path", "text/plain")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--version", default="1.19.0")
    ap.add_argument("--max-request-bytes", type=int, default=DEFAULT_LIMIT)
    ap.add_argument("--apply-delay-ms", type=float, default=300.0)
    ap.add_argument("--spec", default=SPEC_FILE, help="operations file written by make_qdrant_spec.py")
    ap.add_argument("--log", default="")
    ap.add_argument("--log-bodies", action="store_true", help="keep the first 4 KiB of each request body in the log")
    add_listen_args(ap)
    ap.add_argument("--sink-upserts", action="store_true",
                    help="benchmark mode: acknowledge PUT /points without parsing or storing them, except in "
                         "collections named __* (reads of the other collections see nothing)")
    args = ap.parse_args()
    major_minor = tuple(int(x) for x in args.version.split(".")[:2])
    state = State(args)
    state.spec = Spec(args.spec)
    if major_minor < (1, 10):
        # Before 1.10 there is no universal query endpoint.
        state.spec.ops = [o for o in state.spec.ops if "/points/query" not in o[1]]
    state.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = state
    listening(server, args)
    print(f"qdrant double {args.version} on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
