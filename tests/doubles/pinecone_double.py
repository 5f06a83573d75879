#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A strict protocol double of Pinecone (API version 2026-04), standard library only.
#
# One port serves both planes. Control plane: POST/GET /indexes, GET/DELETE/PATCH
# /indexes/{name}. Data plane (camelCase JSON): /vectors/upsert, /query, /vectors/fetch,
# /vectors/update, /vectors/delete, /vectors/list, /describe_index_stats, /namespaces[/{ns}].
# Describe returns host "127.0.0.1:PORT/index/NAME", so data-plane paths carry the index as a
# prefix (/index/NAME/query); a path without the prefix is served when one index exists.
#
# Strictness follows shared/specs/pinecone-db-{data,control}.oas.yaml (written out by hand
# here: the double reads no file outside the repository): Api-Key and
# X-Pinecone-Api-Version required, unknown fields and wrong types rejected, 2 MiB per request
# and 1000 vectors per upsert, metadata at most 40960 bytes serialized (no null, no nested
# objects, lists of strings only; numbers kept as float64, as Pinecone does), ids 1..512
# characters, topK 1..10000, a 4 MiB query response cap, URLs at most 8192 bytes. Scores:
# cosine similarity, dot product, and for euclidean the SQUARED L2 distance (what Pinecone
# returns; lower is closer).
#
# Eventual consistency: a write gets an LSN (x-pinecone-request-lsn) and becomes visible
# --consistency-delay-ms later; reads report x-pinecone-max-indexed-lsn.
#
# Test hooks (no auth): POST /__double__/faults {"path","method","index","status","count",
#   "after","retry_after","message","drop","quota"} (a 429 storm is status 429 with a count;
#   "quota": true gives the Starter plan's monthly-limit 429 that clients must not retry;
#   "drop" closes the connection without a reply; "index" limits the fault to one index;
#   "truncate": true sends a 200 whose Content-Length is larger than its body, then closes;
#   "malformed": VALUE answers 200 with VALUE as the JSON body, the request not applied;
#   "retry_after_date": N sends Retry-After as an HTTP date N seconds ahead);
#   DELETE /__double__/faults; GET /__double__/requests[?index=NAME] (the request log);
#   DELETE /__double__/requests; POST /__double__/config {"index"?, "consistency_delay_ms"}
#   (per index, so parallel tests with their own index do not disturb each other);
#   POST /__double__/reset; GET /__double__/health.
import argparse
import base64
import email.utils
import json
import math
import os
import re
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from doublenet import add_listen_args, hang_up, listening, send_cut_short

API_VERSIONS = {"2025-10", "2026-04"}
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_URL_BYTES = 8192
MAX_METADATA_BYTES = 40960
MAX_VECTORS = 1000
MAX_TOP_K = 10000
MAX_ID_CHARS = 512
CLOUD_REGIONS = {
    "aws": {"us-east-1", "us-west-2", "eu-west-1"},
    "gcp": {"us-central1", "europe-west4"},
    "azure": {"eastus2"},
}
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")
DEFAULT_NS = "__default__"
GRPC = {400: 3, 404: 5, 409: 6, 429: 8, 401: 16, 500: 13, 503: 14}
CONTROL_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                 409: "ALREADY_EXISTS", 422: "UNPROCESSABLE_ENTITY", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}
# The Starter plan's answer once the month's write units are used up: a 429 like a rate limit,
# told apart only by its message.
QUOTA_MESSAGE = ("Request failed. You've reached your write unit limit for the current month (2000000). "
                 "To continue writing data, upgrade your plan.")
INDEX_PATH = re.compile(r"^/index/([^/]+)(/.*)$")


class HttpError(Exception):
    def __init__(self, status, message, plane="data", code=None):
        super().__init__(message)
        self.status, self.message, self.plane, self.code = status, message, plane, code


def bad(message, status=400):
    return HttpError(status, message)


def kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return "null"


def check_fields(obj, where, allowed, required=()):
    if not isinstance(obj, dict):
        raise bad(f"{where}: expected an object")
    for k in obj:
        if k not in allowed:
            raise bad(f'{where}: unknown field "{k}"')
    for k in required:
        if k not in obj:
            raise bad(f'{where}: missing required field "{k}"')


def check_type(value, want, where):
    got = kind(value)
    if want == "int":
        ok = got == "num" and float(value).is_integer()
    elif want == "float":
        ok = got == "num" and math.isfinite(value)
    else:
        ok = got == want
    if not ok:
        raise bad(f"{where}: expected {want}, got {json.dumps(value)[:40]}")


def check_values(values, dim, where):
    check_type(values, "list", where)
    # Fast path (C-level loops): every element an int or float (bool excluded), none infinite.
    if not all(type(v) is float or type(v) is int for v in values) or any(map(math.isinf, values)):
        for v in values:
            check_type(v, "float", where)
    if len(values) != dim:
        raise bad(f"Vector dimension {len(values)} does not match the dimension of the index {dim}")
    if not any(values):
        raise bad(f"{where}: dense vectors must contain at least one non-zero value")


def reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def check_sparse(sv, where):
    check_fields(sv, where, {"indices", "values"}, ("indices", "values"))
    check_type(sv["indices"], "list", where + ".indices")
    check_type(sv["values"], "list", where + ".values")
    if len(sv["indices"]) != len(sv["values"]) or len(sv["indices"]) > 1000:
        raise bad(f"{where}: indices and values must have the same length (at most 1000)")


def metadata_size(md):
    return len(json.dumps(md, separators=(",", ":"), ensure_ascii=False).encode())


def check_metadata(md, where, record_id):
    if not isinstance(md, dict):
        raise bad(f"{where}: metadata must be an object")
    for k, v in md.items():
        t = kind(v)
        if t == "null":
            raise bad(f'Metadata value for field "{k}" of vector "{record_id}" must be a string, number, boolean or list of strings, got null')
        if t == "object":
            raise bad(f'Metadata value for field "{k}" of vector "{record_id}" must be a string, number, boolean or list of strings, got a nested object')
        if t == "list" and any(kind(e) != "str" for e in v):
            raise bad(f'Metadata value for field "{k}" of vector "{record_id}" must be a list of strings')
        if t == "num" and not math.isfinite(v):
            raise bad(f'Metadata value for field "{k}" of vector "{record_id}" is not finite')
    size = metadata_size(md)
    if size > MAX_METADATA_BYTES:
        raise bad(f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} bytes per vector")


def as_stored(md):
    """Metadata as Pinecone keeps it: every number a float64 (2**53 + 1 comes back as 2**53)."""
    return {k: float(v) if kind(v) == "num" else v for k, v in md.items()}


def check_id(rid, where):
    check_type(rid, "str", where)
    if not 1 <= len(rid) <= MAX_ID_CHARS:
        raise bad(f"{where}: id must be 1 to {MAX_ID_CHARS} characters, got {len(rid)}")


# --- filters (Pinecone semantics) -----------------------------------------------------------
SCALAR_OPS = {"$eq", "$ne"}
NUM_OPS = {"$gt", "$gte", "$lt", "$lte"}
LIST_OPS = {"$in", "$nin"}


def check_filter(f, where="filter"):
    if not isinstance(f, dict) or not f:
        raise bad(f"{where}: expected a non-empty object")
    for k, v in f.items():
        if k in ("$and", "$or"):
            if not isinstance(v, list) or not v:
                raise bad(f"{where}.{k}: expected a non-empty array")
            for i, sub in enumerate(v):
                check_filter(sub, f"{where}.{k}[{i}]")
        elif k.startswith("$"):
            raise bad(f"{where}: unknown operator {k}")
        elif isinstance(v, dict):
            if not v:
                raise bad(f"{where}.{k}: empty operator object")
            for op, arg in v.items():
                t = kind(arg)
                if op in SCALAR_OPS and t not in ("str", "num", "bool"):
                    raise bad(f"{where}.{k}.{op}: expected a string, number or boolean")
                elif op in NUM_OPS and t != "num":
                    raise bad(f"{where}.{k}.{op}: expected a number")
                elif op in LIST_OPS:
                    if t != "list" or not arg or any(kind(e) not in ("str", "num") for e in arg):
                        raise bad(f"{where}.{k}.{op}: expected a non-empty array of strings or numbers")
                    if len(arg) > 10000:
                        raise bad(f"{where}.{k}.{op}: at most 10000 values")
                elif op == "$exists" and t != "bool":
                    raise bad(f"{where}.{k}.$exists: expected a boolean")
                elif op not in SCALAR_OPS | NUM_OPS | LIST_OPS | {"$exists"}:
                    raise bad(f"{where}.{k}: unknown operator {op}")
        elif kind(v) not in ("str", "num", "bool"):
            raise bad(f"{where}.{k}: expected a string, number, boolean or operator object")


def same(a, b):
    ka, kb = kind(a), kind(b)
    return ka == kb and a == b


def field_any(field, pred):
    return any(pred(e) for e in field) if isinstance(field, list) else pred(field)


def matches(f, md):
    for k, v in f.items():
        if k == "$and":
            if not all(matches(s, md) for s in v):
                return False
        elif k == "$or":
            if not any(matches(s, md) for s in v):
                return False
        else:
            ops = v if isinstance(v, dict) else {"$eq": v}
            for op, arg in ops.items():
                if not match_op(op, arg, k in md, md.get(k)):
                    return False
    return True


def match_op(op, arg, present, field):
    if op == "$exists":
        return present == arg
    if not present:
        return False  # Pinecone: $ne/$nin do not match records without the field
    if op == "$eq":
        return field_any(field, lambda e: same(e, arg))
    if op == "$ne":
        return not field_any(field, lambda e: same(e, arg))
    if op == "$in":
        return field_any(field, lambda e: any(same(e, a) for a in arg))
    if op == "$nin":
        return not field_any(field, lambda e: any(same(e, a) for a in arg))
    if kind(field) != "num":
        return False
    return {"$gt": field > arg, "$gte": field >= arg, "$lt": field < arg, "$lte": field <= arg}[op]


def score(metric, q, v):
    if metric == "dotproduct":
        return sum(a * b for a, b in zip(q, v))
    if metric == "euclidean":
        return sum((a - b) * (a - b) for a, b in zip(q, v))
    nq = math.sqrt(sum(a * a for a in q))
    nv = math.sqrt(sum(b * b for b in v))
    return sum(a * b for a, b in zip(q, v)) / (nq * nv) if nq and nv else 0.0


# --- state ----------------------------------------------------------------------------------
class Index:
    def __init__(self, name, dimension, metric, cloud, region, ready_at, tags, protection):
        self.name, self.dimension, self.metric = name, dimension, metric
        self.cloud, self.region, self.ready_at = cloud, region, ready_at
        self.tags, self.protection = tags, protection
        self.namespaces = {}  # ns -> {id: (values, metadata)}
        self.pending = deque()  # (due, lsn, fn)
        self.lsn = 0
        self.applied = 0
        self.delay_ms = None  # None: the server's --consistency-delay-ms

    def ns(self, name, create=False):
        name = "" if name in ("", DEFAULT_NS) else name
        if create:
            return self.namespaces.setdefault(name, {})
        return self.namespaces.get(name, {})

    def advance(self, now):
        while self.pending and self.pending[0][0] <= now:
            _, lsn, fn = self.pending.popleft()
            fn()
            self.applied = lsn

    def write(self, fn, delay_s):
        self.lsn += 1
        self.pending.append((time.monotonic() + delay_s, self.lsn, fn))
        self.advance(time.monotonic())
        return self.lsn


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.indexes = {}
        self.faults = []
        self.log = []
        self.fault_seen = {}
        for spec in self.args.index or []:
            name, dim, metric = spec.split(":")
            self.indexes[name] = Index(name, int(dim), metric, "aws", "us-east-1", 0, {}, "disabled")


# --- HTTP -----------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pinecone-double/1"
    # Headers and body go out in two writes; without TCP_NODELAY every keep-alive reply waits
    # for the client's delayed ACK (40 ms), longer than the consistency delay it would hide.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("pinecone-double: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    # Sends a JSON (or plain) reply with an exact Content-Length, keeping the connection.
    def reply(self, status, payload=None, text=None, headers=None):
        if text is not None:
            body, ctype = text.encode(), "text/plain"
        elif payload is None:
            body, ctype = b"", None
        else:
            body, ctype = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-pinecone-request-id", str(id(self)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        return status

    def dispatch(self, method):
        st = self.server.state
        raw_path = self.path
        path, _, query = raw_path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        m = INDEX_PATH.match(path)
        entry = {"method": method, "path": path, "query": query, "bytes": len(raw), "index": m.group(1) if m else None,
                 "api_version": self.headers.get("X-Pinecone-Api-Version"),
                 "content_type": self.headers.get("Content-Type"),
                 "has_api_key": self.headers.get("Api-Key") is not None,
                 "user_agent": self.headers.get("User-Agent"), "t": time.time()}
        if path.startswith("/__double__/"):
            return self.hook(method, path, query, raw)
        if st.args.log_bodies and raw:
            try:
                entry["body"] = json.loads(raw)
            except ValueError:
                entry["body_text"] = raw[:200].decode(errors="replace")
        with st.lock:
            st.log.append(entry)
            fault = self.take_fault(method, path)
        if fault is not None:
            entry["fault"] = True
            if fault.get("drop"):
                hang_up(self)
                entry["status"] = 0
                return
            if fault.get("truncate"):
                send_cut_short(self, b'{"matches":[],"namespace":"","usage":{"readUnits":1}}')
                entry["status"] = "truncated"
                return
            if "malformed" in fault:
                entry["status"] = self.reply(200, fault["malformed"])
                entry["malformed"] = True
                return
            status = 429 if fault.get("quota") else fault.get("status", 503)
            headers = {}
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            if "retry_after_date" in fault:
                headers["Retry-After"] = email.utils.formatdate(time.time() + fault["retry_after_date"], usegmt=True)
            default = "Too many requests. Please retry shortly." if status == 429 else "Service unavailable"
            msg = fault.get("message", QUOTA_MESSAGE if fault.get("quota") else default)
            if path == "/indexes" or path.startswith("/indexes/"):
                payload = {"error": {"code": CONTROL_CODES.get(status, "UNKNOWN"), "message": msg}, "status": status}
            else:
                payload = {"code": GRPC.get(status, 2), "message": msg, "details": []}
            entry["status"] = self.reply(status, payload, headers=headers)
            return
        try:
            entry["status"] = self.route(method, path, query, raw)
        except HttpError as e:
            if e.plane == "control":
                payload = {"error": {"code": e.code or CONTROL_CODES.get(e.status, "UNKNOWN"), "message": e.message},
                           "status": e.status}
            else:
                payload = {"code": GRPC.get(e.status, 2), "message": e.message, "details": []}
            entry["status"] = self.reply(e.status, payload)
            entry["error"] = e.message

    def take_fault(self, method, path):
        m = INDEX_PATH.match(path)
        index = m.group(1) if m else None
        for f in self.server.state.faults:
            if f.get("method") and f["method"] != method:
                continue
            if f.get("path") and not path.endswith(f["path"]):
                continue
            if f.get("index") and f["index"] != index:
                continue
            if f.get("after", 0) > 0:
                f["after"] -= 1
                continue
            if f.get("count", 1) <= 0:
                continue
            f["count"] = f.get("count", 1) - 1
            return f
        return None

    def hook(self, method, path, query, raw):
        st = self.server.state
        with st.lock:
            if path == "/__double__/health":
                return self.reply(200, {"ok": True, "indexes": sorted(st.indexes)})
            if path == "/__double__/requests" and method == "GET":
                want = dict(p.partition("=")[::2] for p in query.split("&") if p).get("index")
                log = st.log if not want else [e for e in st.log if e.get("index") == want]
                return self.reply(200, log)
            if path == "/__double__/config" and method == "POST":
                c = json.loads(raw or b"{}")
                ms = c.get("consistency_delay_ms")
                if c.get("index"):
                    if c["index"] not in st.indexes:
                        return self.reply(404, text="no such index")
                    st.indexes[c["index"]].delay_ms = ms
                else:
                    st.args.consistency_delay_ms = ms or 0
                return self.reply(200, {})
            if path == "/__double__/requests" and method == "DELETE":
                st.log = []
                return self.reply(200, {})
            if path == "/__double__/faults" and method == "POST":
                f = json.loads(raw or b"{}")
                st.faults.extend(f if isinstance(f, list) else [f])
                return self.reply(200, {"faults": len(st.faults)})
            if path == "/__double__/faults" and method == "DELETE":
                st.faults = []
                return self.reply(200, {})
            if path == "/__double__/reset" and method == "POST":
                st.reset()
                return self.reply(200, {})
        return self.reply(404, text="no such hook")

    def check_headers(self, plane):
        key = self.headers.get("Api-Key")
        if key is None or key != self.server.state.args.api_key:
            raise HttpError(401, "Invalid API key." if plane == "control" else "Unauthorized", plane, "UNAUTHENTICATED")
        version = self.headers.get("X-Pinecone-Api-Version")
        if version is None:
            raise HttpError(400, "missing X-Pinecone-Api-Version header", plane)
        if version not in API_VERSIONS:
            raise HttpError(400, f'unsupported API version "{version}"', plane)

    def json_body(self, raw, plane):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            raise HttpError(400, "Content-Type must be application/json", plane)
        if len(raw) > MAX_REQUEST_BYTES:
            raise HttpError(400, f"Request size {len(raw)} bytes exceeds the maximum supported size of {MAX_REQUEST_BYTES} bytes", plane)
        try:
            # NaN and Infinity are not JSON: refuse them as the service does.
            return json.loads(raw, parse_constant=reject_constant)
        except ValueError as e:
            raise HttpError(400, f"failed to parse request body: {e}", plane, "INVALID_ARGUMENT")

    def route(self, method, path, query, raw):
        if len(self.path) > MAX_URL_BYTES:
            return self.reply(414, text="URI Too Long")
        if path == "/indexes" or path.startswith("/indexes/"):
            # The control plane answers 401 with its JSON ErrorResponse ("Invalid API key.").
            self.check_headers("control")
            return self.control(method, path, raw)
        try:
            self.check_headers("data")
        except HttpError as e:
            if e.status == 401:
                return self.reply(401, text="Unauthorized")
            raise
        st = self.server.state
        m = INDEX_PATH.match(path)
        with st.lock:
            if m:
                idx = st.indexes.get(m.group(1))
                path = m.group(2)
                if idx is None:
                    raise bad(f"index {m.group(1)} not found", 404)
            elif len(st.indexes) == 1:
                idx = next(iter(st.indexes.values()))
            else:
                raise bad("data-plane path needs an /index/NAME prefix when several indexes exist", 404)
            if time.monotonic() < idx.ready_at:
                raise bad("index is not ready", 503)
            idx.advance(time.monotonic())
        return self.data(method, path, query, raw, idx)

    # --- control plane ----------------------------------------------------------------------
    def model(self, idx):
        ready = time.monotonic() >= idx.ready_at
        return {"name": idx.name, "dimension": idx.dimension, "metric": idx.metric,
                "host": f"127.0.0.1:{self.server.server_port}/index/{idx.name}",
                "deletion_protection": idx.protection, "tags": idx.tags,
                "spec": {"serverless": {"cloud": idx.cloud, "region": idx.region,
                                        "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}}}},
                "status": {"ready": ready, "state": "Ready" if ready else "Initializing"},
                "vector_type": "dense"}

    def control(self, method, path, raw):
        st = self.server.state
        parts = path.split("/")[2:]
        if method == "POST" and not parts:
            body = self.json_body(raw, "control")
            return self.create_index(body)
        if method == "GET" and not parts:
            with st.lock:
                return self.reply(200, {"indexes": [self.model(i) for i in st.indexes.values()]})
        if len(parts) != 1:
            raise HttpError(404, f"no route for {method} {path}", "control", "NOT_FOUND")
        name = unquote(parts[0])
        with st.lock:
            idx = st.indexes.get(name)
            if idx is None:
                raise HttpError(404, f"Resource {name} not found", "control", "NOT_FOUND")
            if method == "GET":
                return self.reply(200, self.model(idx))
            if method == "DELETE":
                if idx.protection == "enabled":
                    raise HttpError(403, f"Deletion protection is enabled for index {name}", "control", "FORBIDDEN")
                del st.indexes[name]
                return self.reply(202)
            if method == "PATCH":
                body = self.json_body(raw, "control")
                allowed = {"deletion_protection", "tags", "spec", "embed"}
                if not isinstance(body, dict) or any(k not in allowed for k in body):
                    raise HttpError(422, "unknown field in configure request", "control", "UNPROCESSABLE_ENTITY")
                if "deletion_protection" in body:
                    idx.protection = body["deletion_protection"]
                return self.reply(202, self.model(idx))
        raise HttpError(404, f"no route for {method} {path}", "control", "NOT_FOUND")

    def create_index(self, body):
        def unprocessable(msg):
            return HttpError(422, msg, "control", "UNPROCESSABLE_ENTITY")

        if not isinstance(body, dict):
            raise unprocessable("request body must be an object")
        allowed = {"name", "dimension", "metric", "deletion_protection", "tags", "spec", "vector_type"}
        for k in body:
            if k not in allowed:
                raise unprocessable(f"unknown field `{k}`")
        for k in ("name", "spec"):
            if k not in body:
                raise unprocessable(f"missing field `{k}`")
        name, spec = body["name"], body["spec"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise HttpError(400, "Name must consist of lower case alphanumeric characters or '-', 1 to 45 characters", "control")
        vtype = body.get("vector_type", "dense")
        if vtype != "dense":
            raise HttpError(400, "the double supports dense indexes only", "control")
        dim = body.get("dimension")
        if kind(dim) != "num" or not float(dim).is_integer() or not 1 <= dim <= 20000:
            raise HttpError(400, "Dimension must be an integer from 1 to 20000 for a dense index", "control")
        metric = body.get("metric", "cosine")
        if metric not in ("cosine", "euclidean", "dotproduct"):
            raise HttpError(400, f"Invalid metric {metric}", "control")
        if not isinstance(spec, dict) or list(spec) != ["serverless"] or not isinstance(spec["serverless"], dict):
            raise unprocessable("spec must be {\"serverless\": {...}}")
        sv = spec["serverless"]
        for k in sv:
            if k not in ("cloud", "region", "read_capacity", "source_collection", "schema"):
                raise unprocessable(f"unknown field `spec.serverless.{k}`")
        if "cloud" not in sv or "region" not in sv:
            raise unprocessable("missing field `cloud` or `region`")
        if sv["cloud"] not in CLOUD_REGIONS or sv["region"] not in CLOUD_REGIONS[sv["cloud"]]:
            raise HttpError(404, f"Unknown cloud or region: {sv['cloud']} {sv['region']}", "control", "NOT_FOUND")
        prot = body.get("deletion_protection", "disabled")
        if prot not in ("enabled", "disabled"):
            raise HttpError(400, "deletion_protection must be enabled or disabled", "control")
        tags = body.get("tags", {})
        if not isinstance(tags, dict) or any(not isinstance(v, str) for v in tags.values()):
            raise unprocessable("tags must map strings to strings")
        st = self.server.state
        with st.lock:
            if name in st.indexes:
                raise HttpError(409, f"Resource {name} already exists", "control", "ALREADY_EXISTS")
            idx = Index(name, int(dim), metric, sv["cloud"], sv["region"],
                        time.monotonic() + st.args.index_ready_ms / 1000.0, tags, prot)
            st.indexes[name] = idx
            return self.reply(201, self.model(idx))

    # --- data plane -------------------------------------------------------------------------
    def data(self, method, path, query, raw, idx):
        routes = {
            ("POST", "/vectors/upsert"): self.upsert,
            ("POST", "/query"): self.query,
            ("GET", "/vectors/fetch"): self.fetch,
            ("POST", "/vectors/update"): self.update,
            ("POST", "/vectors/delete"): self.delete,
            ("GET", "/vectors/list"): self.list_ids,
            ("POST", "/describe_index_stats"): self.stats,
            ("GET", "/namespaces"): self.list_namespaces,
            ("POST", "/namespaces"): self.create_namespace,
        }
        fn = routes.get((method, path))
        if fn is not None:
            return fn(idx, query, raw)
        m = re.match(r"^/namespaces/([^/]+)$", path)
        if m and method in ("GET", "DELETE"):
            return self.one_namespace(idx, method, unquote(m.group(1)))
        raise bad(f"no route for {method} {path}", 404)

    def params(self, query, allowed):
        out = {}
        for part in query.split("&") if query else []:
            k, _, v = part.partition("=")
            # '+' stays a literal plus (pinecone-io/python-sdk#372): only %20 is a space.
            k, v = unquote(k), unquote(v)
            if k not in allowed:
                raise bad(f'unknown query parameter "{k}"')
            out.setdefault(k, []).append(v)
        return out

    def delay(self, idx=None):
        ms = idx.delay_ms if idx is not None and idx.delay_ms is not None else None
        return (self.server.state.args.consistency_delay_ms if ms is None else ms) / 1000.0

    def upsert(self, idx, query, raw):
        body = self.json_body(raw, "data")
        check_fields(body, "upsert", {"vectors", "namespace"}, ("vectors",))
        ns = body.get("namespace", "")
        check_type(ns, "str", "namespace")
        vectors = body["vectors"]
        check_type(vectors, "list", "vectors")
        if not 1 <= len(vectors) <= MAX_VECTORS:
            raise bad(f"vectors: between 1 and {MAX_VECTORS} vectors per request, got {len(vectors)}")
        records = {}
        for i, v in enumerate(vectors):
            check_fields(v, f"vectors[{i}]", {"id", "values", "sparseValues", "metadata"}, ("id",))
            check_id(v["id"], f"vectors[{i}].id")
            if "values" not in v:
                raise bad(f"vectors[{i}]: a dense index needs values")
            check_values(v["values"], idx.dimension, f"vectors[{i}].values")
            if "sparseValues" in v:
                check_sparse(v["sparseValues"], f"vectors[{i}].sparseValues")
            md = v.get("metadata", {})
            check_metadata(md, f"vectors[{i}].metadata", v["id"])
            records[v["id"]] = (v["values"], as_stored(md))
        if self.server.state.args.sink:
            return self.reply(200, {"upsertedCount": len(vectors)})
        with self.server.state.lock:
            lsn = idx.write(lambda: idx.ns(ns, True).update(records), self.delay(idx))
        return self.reply(200, {"upsertedCount": len(vectors)}, headers={"x-pinecone-request-lsn": str(lsn)})

    def read_headers(self, idx):
        return {"x-pinecone-max-indexed-lsn": str(idx.applied)}

    def query(self, idx, query, raw):
        body = self.json_body(raw, "data")
        allowed = {"namespace", "topK", "filter", "includeValues", "includeMetadata", "queries", "vector",
                   "sparseVector", "id", "scanFactor", "maxCandidates"}
        check_fields(body, "query", allowed, ("topK",))
        if "queries" in body:
            raise bad("query: the deprecated queries field is not supported; send vector or id")
        top_k = body["topK"]
        check_type(top_k, "int", "topK")
        if not 1 <= top_k <= MAX_TOP_K:
            raise bad(f"topK must be between 1 and {MAX_TOP_K}, got {top_k}")
        for k in ("includeValues", "includeMetadata"):
            if k in body:
                check_type(body[k], "bool", k)
        ns = body.get("namespace", "")
        check_type(ns, "str", "namespace")
        if ("vector" in body) == ("id" in body):
            raise bad("query: send exactly one of vector or id")
        if "sparseVector" in body:
            check_sparse(body["sparseVector"], "sparseVector")
        flt = body.get("filter")
        if flt is not None:
            check_filter(flt)
        with self.server.state.lock:
            space = dict(idx.ns(ns))
            hdr = self.read_headers(idx)
        if "vector" in body:
            check_values(body["vector"], idx.dimension, "vector")
            qv = body["vector"]
        else:
            check_id(body["id"], "id")
            if body["id"] not in space:
                return self.reply(200, {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}, headers=hdr)
            qv = space[body["id"]][0]
        hits = []
        for rid, (values, md) in space.items():
            if flt is not None and not matches(flt, md):
                continue
            hits.append((score(idx.metric, qv, values), rid))
        asc = idx.metric == "euclidean"
        hits.sort(key=lambda h: (h[0] if asc else -h[0], h[1]))
        matches_out = []
        for s, rid in hits[:top_k]:
            m = {"id": rid, "score": s, "values": space[rid][0] if body.get("includeValues") else []}
            if body.get("includeMetadata") and space[rid][1]:
                m["metadata"] = space[rid][1]
            matches_out.append(m)
        out = {"matches": matches_out, "namespace": ns, "usage": {"readUnits": 1 + len(matches_out) // 100}}
        size = len(json.dumps(out, separators=(",", ":")))
        if size > MAX_RESPONSE_BYTES:
            raise bad(f"Query response size {size} bytes exceeds the limit of {MAX_RESPONSE_BYTES} bytes; "
                      "reduce topK or leave out values and metadata")
        return self.reply(200, out, headers=hdr)

    def fetch(self, idx, query, raw):
        p = self.params(query, {"ids", "namespace"})
        ids = p.get("ids")
        if not ids:
            raise bad("fetch: the ids parameter is required")
        if len(ids) > 1000:
            raise bad(f"fetch: at most 1000 ids, got {len(ids)}")
        for i in ids:
            check_id(i, "ids")
        ns = p.get("namespace", [""])[-1]
        with self.server.state.lock:
            space = idx.ns(ns)
            vectors = {}
            for i in ids:
                if i in space:
                    values, md = space[i]
                    vectors[i] = {"id": i, "values": values}
                    if md:
                        vectors[i]["metadata"] = md
            hdr = self.read_headers(idx)
        return self.reply(200, {"vectors": vectors, "namespace": ns, "usage": {"readUnits": 1}}, headers=hdr)

    def update(self, idx, query, raw):
        body = self.json_body(raw, "data")
        check_fields(body, "update", {"id", "values", "sparseValues", "setMetadata", "namespace", "filter", "dryRun"})
        ns = body.get("namespace", "")
        check_type(ns, "str", "namespace")
        if ("id" in body) == ("filter" in body):
            raise bad("update: send exactly one of id or filter")
        if "values" in body:
            check_values(body["values"], idx.dimension, "values")
        if "sparseValues" in body:
            check_sparse(body["sparseValues"], "sparseValues")
        setmd = body.get("setMetadata")
        if setmd is not None:
            check_metadata(setmd, "setMetadata", body.get("id", "<filter>"))
        if "dryRun" in body:
            check_type(body["dryRun"], "bool", "dryRun")
        if "id" in body:
            check_id(body["id"], "id")
            if "filter" not in body and "values" not in body and setmd is None and "sparseValues" not in body:
                raise bad("update: nothing to update")
        else:
            check_filter(body["filter"])
            if "values" in body:
                raise bad("update: values cannot be set by filter")
        with self.server.state.lock:
            space = idx.ns(ns)
            targets = [body["id"]] if "id" in body else [r for r, (_, md) in space.items() if matches(body["filter"], md)]
            targets = [t for t in targets if t in space]
            for t in targets:
                if setmd:
                    merged = dict(space[t][1])
                    merged.update(setmd)
                    size = metadata_size(merged)
                    if size > MAX_METADATA_BYTES:
                        raise bad(f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} bytes per vector")
            if body.get("dryRun"):
                return self.reply(200, {"matchedRecords": len(targets)})

            def apply():
                live = idx.ns(ns, True)
                for t in targets:
                    if t in live:
                        values, md = live[t]
                        md = dict(md)
                        md.update(as_stored(setmd or {}))
                        live[t] = (body.get("values", values), md)

            lsn = idx.write(apply, self.delay(idx))
        return self.reply(200, {"matchedRecords": len(targets)}, headers={"x-pinecone-request-lsn": str(lsn)})

    def delete(self, idx, query, raw):
        body = self.json_body(raw, "data")
        check_fields(body, "delete", {"ids", "deleteAll", "namespace", "filter"})
        ns = body.get("namespace", "")
        check_type(ns, "str", "namespace")
        if "deleteAll" in body:
            check_type(body["deleteAll"], "bool", "deleteAll")
        modes = ("ids" in body) + bool(body.get("deleteAll")) + ("filter" in body)
        if modes != 1:
            raise bad("delete: send exactly one of ids, deleteAll or filter")
        if "ids" in body:
            check_type(body["ids"], "list", "ids")
            if not 1 <= len(body["ids"]) <= 1000:
                raise bad(f"delete: between 1 and 1000 ids per request, got {len(body['ids'])}")
            for i in body["ids"]:
                check_id(i, "ids")
        if "filter" in body:
            check_filter(body["filter"])

        def apply():
            space = idx.ns(ns, True)
            if body.get("deleteAll"):
                space.clear()
            elif "ids" in body:
                for i in body["ids"]:
                    space.pop(i, None)
            else:
                for r in [r for r, (_, md) in space.items() if matches(body["filter"], md)]:
                    del space[r]

        with self.server.state.lock:
            lsn = idx.write(apply, self.delay(idx))
        return self.reply(200, {}, headers={"x-pinecone-request-lsn": str(lsn)})

    def list_ids(self, idx, query, raw):
        p = self.params(query, {"namespace", "prefix", "limit", "paginationToken"})
        ns = p.get("namespace", [""])[-1]
        prefix = p.get("prefix", [""])[-1]
        try:
            limit = int(p.get("limit", ["100"])[-1])
        except ValueError:
            raise bad("limit must be an integer")
        if not 1 <= limit <= 100:
            raise bad("limit must be between 1 and 100")
        start = ""
        if "paginationToken" in p:
            try:
                start = base64.urlsafe_b64decode(p["paginationToken"][-1].encode()).decode()
            except ValueError:
                raise bad("invalid paginationToken")
        with self.server.state.lock:
            ids = sorted((i for i in idx.ns(ns) if i.startswith(prefix) and (not start or i > start)),
                         key=lambda s: s.encode())
            hdr = self.read_headers(idx)
        page = ids[:limit]
        out = {"vectors": [{"id": i} for i in page], "namespace": ns, "usage": {"readUnits": 1}}
        if len(ids) > limit:
            out["pagination"] = {"next": base64.urlsafe_b64encode(page[-1].encode()).decode()}
        return self.reply(200, out, headers=hdr)

    def stats(self, idx, query, raw):
        if not raw:
            raise bad("describe_index_stats: the body must be a JSON object ({}), not empty")
        body = self.json_body(raw, "data")
        check_fields(body, "describe_index_stats", {"filter"})
        if "filter" in body:
            raise bad("describe_index_stats: serverless indexes do not support filter")
        with self.server.state.lock:
            nss = {(n or DEFAULT_NS): {"vectorCount": len(s)} for n, s in idx.namespaces.items() if s}
            hdr = self.read_headers(idx)
        total = sum(v["vectorCount"] for v in nss.values())
        return self.reply(200, {"namespaces": nss, "dimension": idx.dimension, "indexFullness": 0,
                                "totalVectorCount": total, "metric": idx.metric, "vectorType": "dense"},
                          headers=hdr)

    def list_namespaces(self, idx, query, raw):
        p = self.params(query, {"limit", "paginationToken", "prefix"})
        prefix = p.get("prefix", [""])[-1]
        with self.server.state.lock:
            names = sorted((n or DEFAULT_NS) for n, s in idx.namespaces.items() if s)
            counts = {(n or DEFAULT_NS): len(s) for n, s in idx.namespaces.items()}
        names = [n for n in names if n.startswith(prefix)]
        return self.reply(200, {"namespaces": [{"name": n, "record_count": counts[n]} for n in names],
                                "total_count": len(names)})

    def create_namespace(self, idx, query, raw):
        body = self.json_body(raw, "data")
        check_fields(body, "create namespace", {"name", "schema"}, ("name",))
        check_type(body["name"], "str", "name")
        with self.server.state.lock:
            if body["name"] in idx.namespaces and idx.namespaces[body["name"]]:
                raise bad(f"namespace {body['name']} already exists", 409)
            idx.ns(body["name"], True)
        return self.reply(200, {"name": body["name"], "record_count": 0})

    def one_namespace(self, idx, method, ns):
        with self.server.state.lock:
            key = "" if ns == DEFAULT_NS else ns
            if key not in idx.namespaces:
                raise bad(f"namespace {ns} not found", 404)
            if method == "GET":
                return self.reply(200, {"name": ns, "record_count": len(idx.namespaces[key])})
            lsn = idx.write(lambda: idx.namespaces.pop(key, None), self.delay(idx))
        return self.reply(200, {}, headers={"x-pinecone-request-lsn": str(lsn)})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    add_listen_args(ap)
    ap.add_argument("--api-key", default=os.environ.get("PINECONE_DOUBLE_API_KEY", "pcsk_test_double_key"))
    ap.add_argument("--consistency-delay-ms", type=float, default=0)
    ap.add_argument("--index-ready-ms", type=float, default=0, help="time from create to status.ready")
    ap.add_argument("--index", action="append", help="pre-created index NAME:DIM:METRIC")
    ap.add_argument("--sink", action="store_true", help="validate upserts but store nothing (benchmarks)")
    ap.add_argument("--no-log-bodies", dest="log_bodies", action="store_false")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    srv.state = State(args)
    listening(srv, args)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
