# SPDX-License-Identifier: MIT
# The Qdrant backend's own promises (issue 5), through the built binary and the protocol double
# (tests/doubles/qdrant_double.py):
#   - ids of all three kinds round trip: unsigned decimals stay numeric point ids, UUIDs are
#     stored lower-case, other strings become uuid5 under the fixed namespace, and every id
#     comes back to the user exactly as written;
#   - NaN is refused before anything is sent; upserts never cross the server's byte limit;
#   - 429 (honouring Retry-After), 503 and dropped connections are retried with nothing lost or
#     duplicated; other 4xx are never retried; exhausted retries exit 3;
#   - payload indexes exist after an ingest, so strict-mode servers work, and a filter on an
#     unindexed metadata key still works on a strict server (scroll + post-filter fallback);
#   - servers before 1.10 are queried through /points/search;
#   - stats carries the collection info; a bad api key exits 2 with a clear auth error and no
#     api key is ever printed; an ingest killed mid-way is finished by --resume;
#   - a reply cut short is retried, Retry-After as an HTTP date is honoured, a 200 of the wrong
#     shape is sent once more and then reported naming the request; User-Agent is vstash/VERSION;
#   - an ingest's resume points (create_dataset with the watermark) cost a catalog read and
#     write, not a collection create, GET and payload-index PUTs each;
#   - every request the client sent matches an operation of the OpenAPI spec (no violations).
# Most tests start a private double on a free port (faults never leak into other tests); the double applies
# writes sent without wait=true only after 2 s, so a missing wait=true shows up as a failure.
# Run: VSTASH_BIN=build/vstash VSTASH_TEST_STATE=build/test-state /usr/bin/python3 tests/integration/qdrant_test.py
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request
import uuid

import numpy as np

from clirun import npy_stream_pairs, wait_until  # this folder is on sys.path

VSTASH = os.environ.get("VSTASH_BIN", "vstash")
HERE = os.path.dirname(os.path.abspath(__file__))
DOUBLE = os.path.join(HERE, "..", "doubles", "qdrant_double.py")
PYTHON = os.environ.get("PYTHON", sys.executable)
STATE = os.environ.get("VSTASH_TEST_STATE", "")
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "vstash:qdrant:point-id")
API_KEY = "it-secret-key-Qd7"


class Double:
    """A private qdrant double on its own port, with a profile file for it."""

    def __init__(self, root, *args, profile=None):
        # Port 0: the kernel picks a free port as the double binds it, and the double writes
        # it to --port-file (no window in which another process could take a port we chose).
        port_file = tempfile.mktemp(prefix="qdrant-port-", dir=root)
        self.proc = subprocess.Popen([PYTHON, DOUBLE, "--port", "0", "--port-file", port_file, "--api-key", API_KEY,
                                      "--apply-delay-ms", "2000", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: self.started(port_file), 20, "the private double's port file")
        wait_until(self.ready, 20, f"the double on port {self.port}")
        self.config = os.path.join(root, f"qdrant-{self.port}.yaml")
        values = {"type": "qdrant", "host": "127.0.0.1", "port": self.port, "api_key": API_KEY,
                  "collection_name": "vstash", "max_attempts": 5}
        values.update(profile or {})
        with open(self.config, "w") as f:
            f.write("default: q\nprofiles:\n  q:\n")
            for k, v in values.items():
                f.write(f"    {k}: {v}\n")
        self.env = dict(os.environ, VSTASH_CONFIG=self.config, VSTASH_NO_PROGRESS="1")
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            self.env.pop(k, None)

    def started(self, port_file):
        if self.proc.poll() is not None:
            raise AssertionError(f"the double exited: {self.proc.stderr.read().decode()}")
        try:
            with open(port_file) as f:
                self.port = int(f.read())
            return True
        except (OSError, ValueError):
            return False

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the double exited: {self.proc.stderr.read().decode()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()

    def api(self, method, path, body=None, admin=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if not admin:
            req.add_header("api-key", API_KEY)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def faults(self, *specs):
        self.api("POST", "/__admin/faults", list(specs), admin=True)

    def log(self):
        return self.api("GET", "/__admin/log", admin=True)

    def violations(self):
        return self.api("GET", "/__admin/violations", admin=True)

    def run(self, *args, check=True, timeout=300):
        p = subprocess.run([VSTASH, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"vstash {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def popen(self, *args):
        return subprocess.Popen([VSTASH, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def count(self, dataset):
        return self.api("POST", f"/collections/{dataset}/points/count", {"exact": True})["result"]["count"]


class QdrantTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-qdrant-")
        self.root = self.tmp.name
        self.doubles = []

    def tearDown(self):
        try:
            for d in self.doubles:
                # Every request of every test matched an operation of the spec.
                self.assertEqual(d.violations(), [], "requests that do not follow the OpenAPI spec")
        finally:
            for d in self.doubles:
                d.stop()
            self.tmp.cleanup()

    def double(self, *args, profile=None):
        d = Double(self.root, *args, profile=profile)
        self.doubles.append(d)
        return d

    def npy(self, name, array):
        path = os.path.join(self.root, name)
        np.save(path, array)
        return path

    def vectors(self, n, dim, seed=1):
        return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)

    # --------------------------------------------------------------------------------------
    def test_ids_of_all_three_kinds_round_trip(self):
        d = self.double()
        ids = ["doc-1", "42", "5C56C793-69F3-4FBF-87E6-C4BF54C28C26", "x y/ü", "007", "18446744073709551615"]
        x = self.vectors(len(ids), 4)
        d.run("--dataset", "ids", "ingest", self.npy("x.npy", x), "--ids", self.npy("ids.npy", np.array(ids)),
              "--metric", "euclidean")
        points = d.api("POST", "/collections/ids/points/scroll", {"limit": 100, "with_payload": True})["result"]
        by_original = {p["payload"]["_id"]: p["id"] for p in points["points"]}
        self.assertEqual(by_original["42"], 42)
        self.assertEqual(by_original["18446744073709551615"], 18446744073709551615)
        self.assertEqual(by_original["5C56C793-69F3-4FBF-87E6-C4BF54C28C26"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26")
        self.assertEqual(by_original["doc-1"], str(uuid.uuid5(ID_NAMESPACE, "doc-1")))
        self.assertEqual(by_original["007"], str(uuid.uuid5(ID_NAMESPACE, "007")))
        self.assertEqual(by_original["x y/ü"], str(uuid.uuid5(ID_NAMESPACE, "x y/ü")))
        got = json.loads(d.run("--dataset", "ids", "--json", "get", *ids, "--include-values").stdout)
        self.assertEqual([r["id"] for r in got["rows"]], ids)
        self.assertEqual(np.array([r["values"] for r in got["rows"]], dtype=np.float32).tobytes(), x.tobytes())
        hits = json.loads(d.run("--dataset", "ids", "--json", "query", json.dumps(x[3].tolist()), "-k", "2").stdout)
        hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
        self.assertEqual(hits[0]["id"], "x y/ü")
        # The same UUID in another form names the same point (UUIDs compare lower-case): get
        # finds it under its stored spelling and does not report it missing (exit 0).
        got = json.loads(d.run("--dataset", "ids", "--json", "get", "5c56c793-69f3-4fbf-87e6-c4bf54c28c26").stdout)
        self.assertEqual([r["id"] for r in got["rows"]], ["5C56C793-69F3-4FBF-87E6-C4BF54C28C26"])
        self.assertEqual(got["missing"], [])
        d.run("--dataset", "ids", "delete", "--id", "5c56c79369f34fbf87e6c4bf54c28c26", "--yes")
        self.assertEqual(d.count("ids"), len(ids) - 1)

    def test_nan_is_refused_before_anything_is_sent(self):
        d = self.double()
        x = self.vectors(10, 4)
        d.run("--dataset", "nan", "ingest", self.npy("ok.npy", x[:2]), "--metric", "dot")
        before = [e for e in d.log() if e["method"] == "PUT" and e["path"].endswith("/points")]
        x[7, 2] = np.nan
        p = d.run("--dataset", "nan", "ingest", self.npy("nan.npy", x), "--append", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("NaN", p.stderr)
        after = [e for e in d.log() if e["method"] == "PUT" and e["path"].endswith("/points")]
        self.assertEqual(len(after), len(before), "an upsert was sent for a batch holding NaN")
        self.assertEqual(d.count("nan"), 2)

    def test_more_than_one_ingest_writer_is_refused_before_anything_is_sent(self):
        # next_index is kept by read-modify-write, so two writers could move it backwards.
        d = self.double()
        p = d.run("--dataset", "two", "ingest", self.npy("two.npy", self.vectors(10, 4)), "--writers", "2",
                  check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("--writers", lines[0])
        self.assertFalse([e for e in d.log() if e["method"] == "PUT"], "something was written")

    def test_upserts_never_cross_the_request_limit(self):
        limit = 65536
        d = self.double("--max-request-bytes", str(limit), profile={"max_request_bytes": limit, "parallel": 3})
        n = 2000
        x = self.vectors(n, 64)
        d.run("--dataset", "bytes", "ingest", self.npy("x.npy", x), "--metric", "cosine", "--batch-size", "1000")
        upserts = [e for e in d.log() if e["method"] == "PUT" and e["path"] == "/collections/bytes/points"]
        self.assertGreater(len(upserts), 2 * n * 64 * 8 // limit // 2)
        self.assertTrue(all(e["status"] == 200 for e in upserts), upserts[:3])
        self.assertLessEqual(max(e["bytes"] for e in upserts), limit)
        self.assertTrue(all("wait=true" in e["query"] for e in upserts))
        self.assertEqual(d.count("bytes"), n)  # read at once: the writes waited

    def test_429_503_and_dropped_connections_are_retried_without_loss_or_duplicates(self):
        d = self.double(profile={"parallel": 1, "max_attempts": 6})
        n = 1500
        x = self.vectors(n, 16, seed=3)
        ids = np.array([f"r{i}" for i in range(n)])
        d.faults({"status": 429, "retry_after": "1", "count": 1, "method": "PUT", "path_contains": "/retry/points"},
                 {"status": 503, "count": 2, "method": "PUT", "path_contains": "/retry/points"},
                 {"drop": True, "count": 1, "method": "PUT", "path_contains": "/retry/points"},
                 {"status": 502, "count": 1, "method": "POST", "path_contains": "/__vstash_catalog/points"})
        d.run("--dataset", "retry", "ingest", self.npy("x.npy", x), "--ids", self.npy("ids.npy", ids),
              "--metric", "dot", "--batch-size", "500")
        log = [e for e in d.log() if e["path"].startswith("/collections/retry/points")]
        statuses = [e["status"] for e in log if e["method"] == "PUT"]
        self.assertIn(429, statuses)
        self.assertEqual(statuses.count(503), 2)
        self.assertIn("dropped", statuses)
        self.assertIn(502, [e["status"] for e in d.log() if e["path"].startswith("/collections/__vstash_catalog")])
        # Retry-After: 1 was honoured: the next upsert came at least ~1 s after the 429.
        i429 = next(i for i, e in enumerate(log) if e["status"] == 429)
        later = [e for e in log[i429 + 1:] if e["method"] == "PUT"]
        self.assertGreaterEqual(later[0]["t"] - log[i429]["t"], 0.9)
        self.assertEqual(d.count("retry"), n)
        out = os.path.join(self.root, "out.npy")
        d.run("--dataset", "retry", "export", "-o", out)
        self.assertEqual(np.load(out).tobytes(), x.tobytes())
        self.assertEqual(list(np.load(out[:-4] + ".ids.npy")), list(ids))

    def test_other_4xx_are_never_retried_and_exhausted_retries_exit_3(self):
        d = self.double(profile={"max_attempts": 3})
        d.run("--dataset", "noretry", "ingest", self.npy("x.npy", self.vectors(5, 4)), "--metric", "dot")
        d.faults({"status": 422, "count": 5, "path_contains": "/noretry/points/query"})
        p = d.run("--dataset", "noretry", "query", "[1,0,0,0]", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len([e for e in d.log() if e["path"].endswith("/points/query")]), 1)
        d.api("POST", "/__admin/reset", {}, admin=True)
        d.faults({"status": 503, "count": 100, "path_contains": "/noretry/points/query"})
        p = d.run("--dataset", "noretry", "query", "[1,0,0,0]", check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("503 after 3 attempts", p.stderr)
        self.assertEqual(len([e for e in d.log() if e["path"].endswith("/points/query")]), 3)

    def test_cut_short_replies_http_date_retry_after_and_malformed_200s(self):
        d = self.double(profile={"max_attempts": 4})
        x = self.vectors(5, 4)
        d.run("--dataset", "wire", "ingest", self.npy("x.npy", x), "--metric", "dot")
        query = ("--dataset", "wire", "--json", "query", json.dumps(x[1].tolist()), "-k", "1")

        def attempts():
            return [e for e in d.log() if e["path"] == "/collections/wire/points/query"]

        # A body shorter than its Content-Length (CURLE_PARTIAL_FILE) is retried, not exit 1.
        d.faults({"truncate": True, "count": 1, "path_contains": "/wire/points/query"})
        hits = json.loads(d.run(*query).stdout)["hits"]
        self.assertEqual([h["id"] for h in hits], ["1"])
        self.assertEqual([e["status"] for e in attempts()], ["truncated", 200])
        # Retry-After as an HTTP date (2 s ahead: at least 1 s at whole-second resolution).
        d.api("POST", "/__admin/reset", {}, admin=True)
        d.faults({"status": 503, "retry_after_date": 2, "count": 1, "path_contains": "/wire/points/query"})
        d.run(*query)
        first, second = attempts()
        self.assertEqual((first["status"], second["status"]), (503, 200))
        self.assertGreaterEqual(second["t"] - first["t"], 0.9)
        # A 200 of the wrong shape is sent once more; twice is an error naming the request.
        d.api("POST", "/__admin/reset", {}, admin=True)
        wrong = {"result": {"points": [{"id": 1}]}, "status": "ok", "time": 0.0}  # no score
        d.faults({"malformed": wrong, "count": 1, "path_contains": "/wire/points/query"})
        self.assertEqual([h["id"] for h in json.loads(d.run(*query).stdout)["hits"]], ["1"])
        d.faults({"malformed": wrong, "count": 2, "path_contains": "/wire/points/query"})
        p = d.run(*query, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("qdrant 127.0.0.1:", p.stderr)
        self.assertIn("POST /collections/wire/points/query: unexpected reply:", p.stderr)
        self.assertNotIn("json.exception", p.stderr)
        d.faults({"malformed": {"result": {"count": -3}}, "count": 2, "path_contains": "/wire/points/count"})
        p = d.run("--dataset", "wire", "--json", "stats", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("POST /collections/wire/points/count: unexpected reply:", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        # Every request vstash sent said who it is.
        version = d.run("--version").stdout.split()[1]
        agents = {e["user_agent"] for e in d.log()}
        self.assertEqual(agents, {f"vstash/{version}"})

    def test_a_resume_point_costs_two_catalog_requests_and_no_collection_setup(self):
        d = self.double(profile={"parallel": 1})
        x = self.vectors(4000, 4, seed=4)
        d.run("--dataset", "marks", "ingest", self.npy("x.npy", x), "--metric", "dot", "--batch-size", "256")
        log = d.log()
        catalog_writes = [e for e in log if e["method"] == "PUT" and e["path"] == "/collections/__vstash_catalog/points"]
        self.assertGreaterEqual(len(catalog_writes), 4, "expected several resume points")
        setup = [(e["method"], e["path"]) for e in log if e["path"] in ("/collections/marks", "/collections/marks/index")]
        # Once per process: a GET (404), the create and the three payload indexes; never per resume point.
        self.assertEqual(setup, [("GET", "/collections/marks"), ("PUT", "/collections/marks")] +
                         [("PUT", "/collections/marks/index")] * 3)
        catalog = [e for e in log if e["path"].startswith("/collections/__vstash_catalog")]
        # Each resume point: read the catalog point, write it back (plus the ingest's own reads
        # and the next_index reservations, which are catalog writes too).
        self.assertLessEqual(len(catalog), 2 * len(catalog_writes) + 4)
        # A second process resuming finds everything in place: one GET, no create, no index PUTs.
        seen = len(log)
        d.run("--dataset", "marks", "ingest", self.npy("x.npy", x), "--metric", "dot", "--batch-size", "256",
              "--resume")
        setup = [(e["method"], e["path"]) for e in d.log()[seen:]
                 if e["path"] in ("/collections/marks", "/collections/marks/index")]
        self.assertEqual(setup, [("GET", "/collections/marks")])
        self.assertEqual(d.count("marks"), 4000)

    def test_filters_run_on_the_server_with_vstash_semantics(self):
        d = self.double("--log-bodies")
        rows = [{"n": 1}, {"n": 1.0}, {"n": "1"}, {"n": [1, 5]}, {"n": 7, "a.b": "x"}, {"n": None},
                {"n": []}, {}, {"a.b": "y", "tags": ["p", "q"]}, {"n": 3.5, "tags": ["q"], "sp ace": True}]
        x = self.vectors(len(rows), 4, seed=5)
        md = os.path.join(self.root, "md.jsonl")
        with open(md, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        d.run("--dataset", "flt", "ingest", self.npy("x.npy", x), "--metadata", md, "--metric", "dot")

        def eq(a, b):
            num = (int, float)
            if type(a) in num and type(b) in num:
                return a == b
            return type(a) is type(b) and a == b

        def one(r, k, cond):
            """vstash's semantics (src/filter.hpp), written out independently of the client."""
            v = r.get(k)
            present = v is not None
            vals = v if isinstance(v, list) else [v]
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, arg in ops.items():
                if op in ("$eq", "$ne"):
                    ok = present and any(eq(e, arg) for e in vals)
                    ok = ok if op == "$eq" else not ok
                elif op in ("$in", "$nin"):
                    ok = present and any(eq(e, a) for e in vals for a in arg)
                    ok = ok if op == "$in" else not ok
                elif op == "$exists":
                    ok = present == arg
                else:
                    ok = type(v) in (int, float) and {"$gt": lambda: v > arg, "$gte": lambda: v >= arg,
                                                      "$lt": lambda: v < arg, "$lte": lambda: v <= arg}[op]()
                if not ok:
                    return False
            return True

        def expected(flt):
            return sorted(str(i) for i, r in enumerate(rows) if all(one(r, k, c) for k, c in flt.items()))

        filters = [{"n": {"$gt": 0}}, {"n": {"$lte": 1}}, {"n": {"$gte": 2, "$lt": 8}}, {"n": {"$exists": True}},
                   {"n": {"$exists": False}}, {"a.b": "x"}, {"a.b": {"$exists": True}}, {"n": {"$ne": 1}},
                   {"tags": {"$nin": ["p"]}}, {"sp ace": True}, {"n": 1}, {"n": {"$in": [5, "1"]}}]
        for flt in filters:
            seen = len(d.log())
            hits = json.loads(d.run("--dataset", "flt", "--json", "query", "[1,1,1,1]", "-k", "20",
                                    "--filter", json.dumps(flt)).stdout)["hits"]
            self.assertEqual(sorted(h["id"] for h in hits), expected(flt), flt)
            counted = json.loads(d.run("--dataset", "flt", "--json", "delete", "--filter", json.dumps(flt),
                                       "--dry-run").stdout)
            self.assertEqual(counted.get("matched", counted.get("deleted")), len(expected(flt)), (flt, counted))
            sent = d.log()[seen:]
            # The filter went to the server: no scroll of the dataset, no has_id list of matches.
            self.assertFalse([e for e in sent if e["path"] == "/collections/flt/points/scroll"], flt)
            self.assertFalse([e for e in sent if "has_id" in e.get("body", "")], flt)
            queries = [e for e in sent if e["path"] == "/collections/flt/points/query"]
            self.assertEqual(len(queries), 1, flt)
            self.assertIn('"filter"', queries[0]["body"])
        # delete --filter sends the filter too, and removes exactly the matches.
        seen = len(d.log())
        d.run("--dataset", "flt", "delete", "--filter", json.dumps({"n": {"$gte": 2}}), "--yes")
        sent = d.log()[seen:]
        self.assertFalse([e for e in sent if e["path"] == "/collections/flt/points/scroll"])
        deletes = [e for e in sent if e["path"] == "/collections/flt/points/delete"]
        self.assertEqual(len(deletes), 1)
        self.assertIn('"_num.n"', deletes[0]["body"])
        self.assertEqual(d.count("flt"), len(rows) - len(expected({"n": {"$gte": 2}})))

    def test_the_client_side_fallback_reads_bounded_pages(self):
        d = self.double("--log-bodies")
        n = 2500
        x = self.vectors(n, 4, seed=6)
        key = 'say "hi"'  # a key Qdrant's paths cannot name: filtered on the client
        md = os.path.join(self.root, "md.jsonl")
        with open(md, "w") as f:
            for i in range(n):
                f.write(json.dumps({key: i % 2}) + "\n")
        d.run("--dataset", "pages", "ingest", self.npy("x.npy", x), "--metadata", md, "--metric", "dot")
        flt = json.dumps({key: 0})
        seen = len(d.log())
        hits = json.loads(d.run("--dataset", "pages", "--json", "query", json.dumps(x[4].tolist()), "-k", "3",
                                "--filter", flt).stdout)["hits"]
        want = sorted((i for i in range(0, n, 2)), key=lambda i: -float(x[i] @ x[4]))[:3]
        self.assertEqual([h["id"] for h in hits], [str(i) for i in want])
        d.run("--dataset", "pages", "delete", "--filter", flt, "--yes")
        self.assertEqual(d.count("pages"), n // 2)
        sent = d.log()[seen:]
        scrolls = [json.loads(e["body"]) for e in sent if e["path"] == "/collections/pages/points/scroll"]
        self.assertGreaterEqual(len(scrolls), 2 * 3)  # three pages per pass, two passes
        self.assertTrue(all(b["limit"] <= 1000 for b in scrolls))
        for e in sent:
            if "has_id" in e.get("body", ""):
                self.assertLessEqual(len(json.loads(e["body"])["filter"]["must"][0]["has_id"]), 1000)
        deletes = [json.loads(e["body"]) for e in sent if e["path"] == "/collections/pages/points/delete"]
        self.assertTrue(deletes and all(len(b["points"]) <= 1000 for b in deletes))

    def test_a_reply_slower_than_the_timeout_is_retried(self):
        d = self.double(profile={"timeout_ms": 700, "max_attempts": 3})
        x = self.vectors(5, 4)
        d.run("--dataset", "slow", "ingest", self.npy("x.npy", x), "--metric", "dot")
        d.faults({"delay_ms": 2000, "count": 1, "path_contains": "/slow/points/query"})
        hits = json.loads(d.run("--dataset", "slow", "--json", "query", json.dumps(x[1].tolist()), "-k", "1").stdout)
        hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
        self.assertEqual(len(hits), 1)
        # The slow attempt is logged once its delay is over.
        wait_until(lambda: len([e for e in d.log() if e["path"] == "/collections/slow/points/query"]) == 2, 10,
                   "both query attempts in the log")

    def test_payload_indexes_and_stats_fields(self):
        d = self.double()
        x = self.vectors(6, 4)
        labels = np.arange(6, dtype=np.int64)
        d.run("--dataset", "idx", "ingest", self.npy("x.npy", x), "--labels", self.npy("y.npy", labels))
        info = d.api("GET", "/collections/idx")["result"]
        schema = {k: v["data_type"] for k, v in info["payload_schema"].items()}
        self.assertEqual(schema, {"_id": "keyword", "_idx": "integer", "_keys": "keyword", "label": "integer"})
        self.assertEqual(info["config"]["params"]["vectors"], {"size": 4, "distance": "Cosine"})
        stats = json.loads(d.run("--json", "stats").stdout)
        self.assertEqual(stats["backend"], "qdrant")
        self.assertEqual(stats["extra"]["server_version"], "1.19.0")
        ds = next(s for s in stats["datasets"] if s["name"] == "idx")
        self.assertEqual(ds["rows"], 6)
        for key in ("status", "segments_count", "points_count", "indexed_vectors_count", "vectors", "payload_indexes"):
            self.assertIn(key, ds["extra"])
        self.assertEqual(ds["extra"]["status"], "green")
        self.assertEqual(ds["extra"]["vectors"], {"size": 4, "distance": "Cosine"})

    def test_distribution_keys_reach_the_double_as_the_spec_says(self):
        # Collection parameters in the PUT /collections/{c} body (vectors.on_disk inside
        # VectorParams), `consistency` on every read and `ordering` on every point write as
        # query parameters; nothing else carries them (the double refuses undeclared ones).
        d = self.double(profile={"shard_number": 3, "replication_factor": 2, "write_consistency_factor": 2,
                                 "on_disk": "true", "consistency": "majority", "ordering": "strong"})
        x = self.vectors(8, 4)
        d.run("--dataset", "dist", "ingest", self.npy("x.npy", x), "--labels",
              self.npy("y.npy", np.arange(8, dtype=np.int64)))
        d.run("--dataset", "dist", "query", json.dumps(x[1].tolist()), "-k", "2")
        d.run("--dataset", "dist", "batch", "--size", "4", "-o", os.path.join(self.root, "b.npy"))
        d.run("--dataset", "dist", "get", "0")
        d.run("--dataset", "dist", "update", "--id", "0", "--metadata", '{"a": 1}')
        d.run("--dataset", "dist", "delete", "--id", "1", "--yes")
        params = d.api("GET", "/collections/dist")["result"]["config"]["params"]
        self.assertEqual((params["shard_number"], params["replication_factor"], params["write_consistency_factor"]),
                         (3, 2, 2))
        self.assertEqual(params["vectors"], {"size": 4, "distance": "Cosine", "on_disk": True})
        reads = ("/points", "/points/scroll", "/points/count", "/points/query", "/points/search")
        seen = set()
        for e in d.log():
            op = e["path"][e["path"].find("/", len("/collections/")):] if e["path"].startswith("/collections/") else ""
            q = e["query"].split("&") if e["query"] else []
            if e["method"] == "POST" and op in reads:
                self.assertIn("consistency=majority", q, e)
                seen.add("read")
            elif e["method"] in ("PUT", "POST") and op.startswith("/points"):
                self.assertIn("ordering=strong", q, e)
                seen.add("write " + op)
            else:
                self.assertFalse([v for v in q if v.startswith(("consistency=", "ordering="))], e)
        self.assertTrue({"read", "write /points", "write /points/delete", "write /points/payload"} <= seen, seen)

    def test_a_bad_distribution_value_is_refused_at_the_profile(self):
        d = self.double()
        x = self.npy("x.npy", self.vectors(2, 4))
        cases = [({"shard_number": 0}, "shard_number"), ({"replication_factor": 4294967296}, "replication_factor"),
                 ({"replication_factor": 2, "write_consistency_factor": 3}, "write_consistency_factor"),
                 ({"consistency": "most"}, "consistency"), ({"consistency": 0}, "consistency"),
                 ({"ordering": "fast"}, "ordering"), ({"on_disk": "maybe"}, "on_disk"),
                 ({"shard_number": "two"}, "shard_number"), ({"shard_key": "yes"}, "shard_key"),
                 ({"shard_collection": "x"}, "shard_collection"),
                 ({"shard_key": "auto", "shard_collection": "a/b"}, "shard_collection")]
        for values, key in cases:
            with self.subTest(values=values):
                bad = Double.__new__(Double)
                bad.__dict__.update(d.__dict__)
                bad.config = os.path.join(self.root, "bad.yaml")
                with open(bad.config, "w") as f:
                    f.write("default: q\nprofiles:\n  q:\n    type: qdrant\n    host: 127.0.0.1\n")
                    f.write(f"    port: {d.port}\n    api_key: {API_KEY}\n")
                    for k, v in values.items():
                        f.write(f"    {k}: {v}\n")
                bad.env = dict(d.env, VSTASH_CONFIG=bad.config)
                before = len(d.log())
                p = bad.run("--dataset", "bad", "ingest", x, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertIn(f'"{key}"', p.stderr)
                self.assertNotIn("json.exception", p.stderr)
                self.assertEqual(len(d.log()), before, "nothing is sent for a bad profile")

    def test_datasets_on_custom_shard_keys_round_trip(self):
        # shard_key: auto: datasets of one dimension and metric share the collection
        # vstash-{dimension}-{metric}, created with sharding_method custom, each on the shard
        # key of its name; every point call carries it (the double refuses one without).
        d = self.double(profile={"shard_key": "auto", "shard_number": 2})
        xa, xb, xc = self.vectors(50, 4, seed=1), self.vectors(30, 4, seed=2), self.vectors(5, 3, seed=3)
        ya = np.arange(50, dtype=np.int64) % 3
        d.run("--dataset", "a", "ingest", self.npy("a.npy", xa), "--labels", self.npy("ya.npy", ya))
        d.run("--dataset", "b", "ingest", self.npy("b.npy", xb))
        d.run("--dataset", "c", "ingest", self.npy("c.npy", xc), "--metric", "dot")
        info = d.api("GET", "/collections/vstash-4-cosine")["result"]["config"]["params"]
        self.assertEqual((info["sharding_method"], info["shard_number"]), ("custom", 2))
        keys = d.api("GET", "/collections/vstash-4-cosine/shards")["result"]["shard_keys"]
        self.assertEqual(sorted(k["key"] for k in keys), ["a", "b"])
        self.assertEqual(d.api("GET", "/collections/vstash-3-dot/shards")["result"]["shard_keys"], [{"key": "c"}])
        self.assertEqual(d.api("GET", "/collections")["result"]["collections"],
                         [{"name": n} for n in ("__vstash_catalog", "vstash-3-dot", "vstash-4-cosine")])
        for name, x in (("a", xa), ("b", xb), ("c", xc)):
            out = os.path.join(self.root, f"out-{name}.npy")
            d.run("--dataset", name, "batch", "--size", str(len(x)), "-o", out)
            self.assertEqual(np.load(out).tobytes(), x.tobytes(), name)
        hits = json.loads(d.run("--dataset", "b", "--json", "query", json.dumps(xb[7].tolist()), "-k", "1").stdout)
        hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
        self.assertEqual(hits[0]["id"], "7")
        got = json.loads(d.run("--dataset", "a", "--json", "query", json.dumps(xa[0].tolist()), "-k", "100",
                               "--filter", '{"$label": 1}').stdout)
        got = got.get("hits", got) if isinstance(got, dict) else got
        self.assertEqual(sorted(int(h["id"]) for h in got), [i for i in range(50) if ya[i] == 1])
        stats = json.loads(d.run("--json", "stats").stdout)
        a = next(s for s in stats["datasets"] if s["name"] == "a")
        self.assertEqual((a["rows"], a["extra"]["collection"], a["extra"]["shard_key"]), (50, "vstash-4-cosine", "a"))
        d.run("--dataset", "a", "delete", "--id", "3", "--yes")
        d.run("--dataset", "a", "delete", "--dataset-all", "--yes")
        keys = d.api("GET", "/collections/vstash-4-cosine/shards")["result"]["shard_keys"]
        self.assertEqual([k["key"] for k in keys], ["b"])
        self.assertEqual(d.api("POST", "/collections/vstash-4-cosine/points/count", {"shard_key": "b"})["result"],
                         {"count": 30})

    def test_the_double_checks_custom_sharding_as_the_spec_says(self):
        d = self.double()

        def refused(method, path, body):
            with self.assertRaises(urllib.error.HTTPError) as e:
                d.api(method, path, body)
            return e.exception.code

        vec = {"vectors": {"size": 2, "distance": "Dot"}}
        self.assertEqual(refused("PUT", "/collections/bad", dict(vec, shard_number=0)), 422)
        self.assertEqual(refused("PUT", "/collections/bad", dict(vec, sharding_method="manual")), 400)
        self.assertEqual(refused("PUT", "/collections/bad", dict(vec, replication_factor=True)), 400)
        d.api("PUT", "/collections/auto", vec)
        d.api("PUT", "/collections/many", dict(vec, sharding_method="custom", shard_number=2))
        self.assertEqual(d.api("GET", "/collections/many")["result"]["config"]["params"]["sharding_method"], "custom")
        self.assertEqual(refused("PUT", "/collections/auto/shards", {"shard_key": "a"}), 400)
        d.api("PUT", "/collections/many/shards", {"shard_key": "a"})
        d.api("PUT", "/collections/many/shards", {"shard_key": "b"})
        self.assertEqual(refused("PUT", "/collections/many/shards", {"shard_key": "a"}), 400)
        point = {"points": [{"id": 1, "vector": [1.0, 0.0], "payload": {}}]}
        self.assertEqual(refused("PUT", "/collections/many/points?wait=true", point), 400)  # no shard key
        self.assertEqual(refused("PUT", "/collections/many/points?wait=true", dict(point, shard_key="c")), 400)
        self.assertEqual(refused("PUT", "/collections/auto/points?wait=true", dict(point, shard_key="a")), 400)
        d.api("PUT", "/collections/many/points?wait=true", dict(point, shard_key="a"))
        self.assertEqual(d.api("POST", "/collections/many/points/count", {"shard_key": "a"})["result"]["count"], 1)
        self.assertEqual(d.api("POST", "/collections/many/points/count", {"shard_key": "b"})["result"]["count"], 0)
        self.assertEqual(refused("POST", "/collections/many/points/count", {}), 400)
        self.assertEqual(refused("POST", "/collections/many/points/scroll?consistency=0", {"shard_key": "a"}), 400)
        self.assertEqual(refused("PUT", "/collections/auto/points?ordering=fast", point), 400)
        d.api("POST", "/collections/many/shards/delete", {"shard_key": "a"})
        self.assertEqual(d.api("GET", "/collections/many/shards")["result"], {"shard_keys": [{"key": "b"}]})
        d.api("POST", "/__admin/reset", admin=True)  # the refusals above were on purpose

    def test_strict_mode_server(self):
        d = self.double()
        x = self.vectors(8, 4)
        md = os.path.join(self.root, "md.jsonl")
        with open(md, "w") as f:
            for i in range(8):
                f.write(json.dumps({"even": i % 2 == 0, "n": i}) + "\n")
        d.run("--dataset", "strict", "ingest", self.npy("x.npy", x), "--metadata", md, "--metric", "dot")
        d.api("PATCH", "/collections/strict", {"strict_mode_config": {
            "enabled": True, "unindexed_filtering_retrieve": False, "unindexed_filtering_update": False}})
        hits = json.loads(d.run("--dataset", "strict", "--json", "query", "[1,1,1,1]", "-k", "10",
                                "--filter", '{"even": true}').stdout)
        hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
        self.assertEqual(sorted(h["id"] for h in hits), ["0", "2", "4", "6"])
        refused = [e for e in d.log() if e["status"] == 400 and e["path"].endswith("/points/query")]
        self.assertEqual(len(refused), 1, "the strict server refused the unindexed filter once, then the fallback ran")
        # Row reads filter on _idx, which is indexed: no refusal.
        seen = len(d.log())
        d.run("--dataset", "strict", "export", "-o", os.path.join(self.root, "out.npy"))
        self.assertFalse([e for e in d.log()[seen:] if e["status"] == 400])
        d.run("--dataset", "strict", "delete", "--filter", '{"n": {"$gte": 6}}', "--yes")
        self.assertEqual(d.count("strict"), 6)

    def test_servers_before_1_10_are_queried_through_search(self):
        d = self.double("--version", "1.9.2")
        x = self.vectors(5, 4)
        d.run("--dataset", "old", "ingest", self.npy("x.npy", x), "--metric", "euclidean")
        hits = json.loads(d.run("--dataset", "old", "--json", "query", json.dumps(x[2].tolist()), "-k", "3").stdout)
        hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
        self.assertEqual(hits[0]["id"], "2")
        self.assertAlmostEqual(hits[0]["score"], 0.0, places=6)
        paths = [e["path"] for e in d.log()]
        self.assertIn("/collections/old/points/search", paths)
        self.assertNotIn("/collections/old/points/query", paths)

    def test_bad_api_key_is_a_clear_auth_error_and_keys_are_never_printed(self):
        d = self.double()
        d.run("--dataset", "auth", "ingest", self.npy("x.npy", self.vectors(3, 4)))
        for key in ("wrong-key-Zq1", ""):
            with open(d.config) as f:
                text = f.read().replace(f"api_key: {API_KEY}", f"api_key: {key}" if key else "max_attempts: 2")
            bad = os.path.join(self.root, f"bad{len(key)}.yaml")
            with open(bad, "w") as f:
                f.write(text)
            p = subprocess.run([VSTASH, "--config", bad, "-vv", "--dataset", "auth", "stats"], capture_output=True,
                               text=True, env=d.env, timeout=60)
            # An auth failure is a configuration problem: exit 2, as on Pinecone.
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("authentication failed (HTTP 401)", p.stderr)
            self.assertIn("api_key", p.stderr)
            if key:
                self.assertNotIn(key, p.stdout + p.stderr)
        # The right key never shows up either: not in errors, verbose logs or profile listings.
        outputs = [d.run("-vv", "--dataset", "auth", "stats"), d.run("profiles", "q", check=False),
                   d.run("--json", "profiles", "q", check=False),
                   d.run("--dataset", "missing", "get", "x", check=False)]
        for p in outputs:
            self.assertNotIn(API_KEY, p.stdout + p.stderr)

    def test_interrupted_ingest_is_finished_by_resume(self):
        d = self.double(profile={"parallel": 1})
        n = 3000
        x = self.vectors(n, 8, seed=9)
        data = self.npy("x.npy", x)
        # Slow every upsert so the kill lands mid-way.
        d.faults({"delay_ms": 300, "count": 1000, "method": "PUT", "path_contains": "/resume/points"})
        p = d.popen("--dataset", "resume", "ingest", data, "--metric", "dot", "--batch-size", "250")
        wait_until(lambda: d.count_or_zero("resume") >= 500, 60, "the first batches")
        p.send_signal(signal.SIGKILL)
        p.wait()
        partial = d.count("resume")
        self.assertLess(partial, n)
        d.api("POST", "/__admin/reset", {}, admin=True)
        d.run("--dataset", "resume", "ingest", data, "--metric", "dot", "--batch-size", "250", "--resume")
        self.assertEqual(d.count("resume"), n)
        out = os.path.join(self.root, "out.npy")
        d.run("--dataset", "resume", "export", "-o", out)
        self.assertEqual(np.load(out).tobytes(), x.tobytes())

    def test_batches_are_read_by_point_id_without_scrolls(self):
        # Issue 17: a batch retrieves its points by id (POST /points {"ids"}) beside one exact
        # count, never with an _idx filter (a scroll the server answers by scanning). Ids other
        # than the default, and a dataset with a gap, cost one scroll of ids per process.
        d = self.double()
        n = 300
        x = self.vectors(n, 4, seed=7)
        labels = self.npy("y.npy", np.arange(n, dtype=np.int64))

        def epoch(dataset, workers):
            seen = len(d.log())
            p = subprocess.run([VSTASH, "--dataset", dataset, "batch", "--stream", "--size", "30", "--shuffle",
                                "--seed", "2", "--workers", str(workers), "-o", "-"], env=d.env, capture_output=True,
                               timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            rows = []
            for data, got in npy_stream_pairs(p.stdout):
                np.testing.assert_array_equal(data, x[got])
                rows += [int(v) for v in got]
            log = d.log()[seen:]
            scrolls = [e for e in log if e["path"] == f"/collections/{dataset}/points/scroll"]
            retrieves = [e for e in log if e["method"] == "POST" and e["path"] == f"/collections/{dataset}/points"]
            return sorted(rows), len(scrolls), len(retrieves)

        d.run("--dataset", "byid", "ingest", self.npy("x.npy", x), "--labels", labels, "--metric", "euclidean")
        for workers in (0, 3):
            self.assertEqual(epoch("byid", workers), (list(range(n)), 0, 10))
        ids = self.npy("ids.npy", np.array([f"row-{i}" for i in range(n)]))
        d.run("--dataset", "named", "ingest", self.npy("x.npy", x), "--labels", labels, "--ids", ids,
              "--metric", "euclidean")
        # The first batch misses every point (its guesses are the default ids), learns the ids
        # in one scroll and retrieves them again.
        self.assertEqual(epoch("named", 0), (list(range(n)), 1, 11))
        d.run("--dataset", "byid", "delete", "--id", "7", "--yes")
        # One scroll of the live indices; the optimistic read of the first batch is retried.
        self.assertEqual(epoch("byid", 0), ([i for i in range(n) if i != 7], 1, 11))


def _count_or_zero(self, dataset):
    try:
        return self.count(dataset)
    except OSError:
        return 0


Double.count_or_zero = _count_or_zero


class SharedDoubleConformance(unittest.TestCase):
    """The fixture's double (used by contract_qdrant): nothing the client sent broke the spec."""

    def test_shared_double_saw_no_spec_violations(self):
        with open(os.path.join(STATE, "qdrant.yaml")) as f:
            port = next(int(line.split(":")[1]) for line in f if line.strip().startswith("port:"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__admin/violations", timeout=10) as r:
            self.assertEqual(json.loads(r.read()), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
