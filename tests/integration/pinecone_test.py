# SPDX-License-Identifier: MIT
# The Pinecone backend's own promises (issue 6), through the built binary against the strict
# double started by tests/servers/pinecone_double.sh (fixture pinecone_double):
#   - upserts are batched by count (<= 1000) and by bytes (<= 2 MB, filled close to it), at
#     2048 and 3072 dimensions too, and the double never rejects one;
#   - describe is called once per index per run and the data-plane host is cached;
#   - a dataset whose dimension or metric differs from a fixed index is a clear ConflictError;
#   - metadata the service cannot hold (null, reserved keys, over 40 KB) is refused before
#     sending, naming the record id; nested values round-trip through the "_json" rule;
#   - with `wait: true` a write is readable at once under eventual consistency (the double's
#     delay is real: with `wait: false` it is not);
#   - 429 (with Retry-After), 503 and dropped connections are retried, losing and duplicating
#     nothing; a monthly-quota 429 is not retried and says so;
#   - an ingest interrupted by an error finishes with --resume, without duplicates or gaps;
#   - ids with spaces round-trip (fetch sends %20, never '+');
#   - the api key never appears in any output, X-Pinecone-Api-Version is always 2026-04 and
#     User-Agent vstash/VERSION;
#   - a reply cut short is retried, Retry-After as an HTTP date is honoured, and a 200 of the
#     wrong shape (an upsertedCount short of what was sent, a match without a score) is sent
#     once more, then reported naming the request.
# Every test uses its own index names, so it runs beside the contract suite on one double.
# Run: VSTASH_BIN=build/vstash VSTASH_TEST_STATE=... VSTASH_TEST_PINECONE_PORT=... \
#      /usr/bin/python3 tests/integration/pinecone_test.py
import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

import numpy as np

from clirun import npy_stream_pairs, wait_until  # this folder is on sys.path

VSTASH = os.environ.get("VSTASH_BIN", "vstash")
STATE = os.environ.get("VSTASH_TEST_STATE", "")
# The port tests/servers/pinecone_double.sh chose (the configured one may have been taken).
with open(os.path.join(STATE, "pinecone.port")) as _f:
    PORT = int(_f.read())
BASE = f"http://127.0.0.1:{PORT}"
MAX_BYTES = 2 * 1024 * 1024
RUN = f"p{os.getpid() % 100000}"


def api_key():
    """The key the double was started with, read from the profile file the start script wrote."""
    with open(os.path.join(STATE, "pinecone.yaml")) as f:
        for line in f:
            if line.strip().startswith("api_key:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("no api_key in pinecone.yaml")


def hook(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def data_log(index):
    return hook("GET", f"/__double__/requests?index={index}")


def describes(index):
    return [e for e in hook("GET", "/__double__/requests") if e["path"] == f"/indexes/{index}"]


class PineconeTest(unittest.TestCase):
    key = None

    @classmethod
    def setUpClass(cls):
        if not STATE or not os.path.exists(os.path.join(STATE, "pinecone.yaml")):
            raise AssertionError("the Pinecone double is not running (tests/servers/pinecone_double.sh start)")
        cls.key = api_key()
        hook("GET", "/__double__/health")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-pinecone-")
        self.outputs = []

    def tearDown(self):
        # No output of any command of the test may hold the api key.
        for text in self.outputs:
            self.assertNotIn(self.key, text)
        self.tmp.cleanup()

    def profile(self, name, index_name, dimension=8, metric="cosine", wait=True, extra=""):
        """A profile file of its own; index_name may be a {dimension}/{metric} template."""
        path = os.path.join(self.tmp.name, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f"""default: {name}
profiles:
  {name}:
    type: pinecone
    api_key: ${{PINECONE_API_KEY}}
    control_host: http://127.0.0.1:{PORT}
    index_name: {index_name}
    dimension: {dimension}
    metric: {metric}
    cloud: aws
    region: us-east-1
    wait: {"true" if wait else "false"}
    max_attempts: 4
{extra}""")
        return path

    def run_cli(self, config, *args, check=True, env_extra=None):
        env = dict(os.environ, VSTASH_CONFIG=config, VSTASH_NO_PROGRESS="1", PINECONE_API_KEY=self.key)
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            env.pop(k, None)
        env.update(env_extra or {})
        p = subprocess.run([VSTASH, *args], env=env, capture_output=True, text=True, timeout=600)
        self.outputs += [p.stdout, p.stderr]
        if check and p.returncode != 0:
            raise AssertionError(f"vstash {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def npy(self, name, array):
        path = os.path.join(self.tmp.name, name)
        np.save(path, array)
        return path

    def upserts(self, index):
        return [e for e in data_log(index) if e["path"].endswith("/vectors/upsert")]

    # --- batching ---------------------------------------------------------------------------
    def test_upserts_fill_2mb_at_2048_and_3072_dims_and_never_pass_1000_records(self):
        cfg = self.profile("p", f"{RUN}-batch-{{dimension}}")
        rng = np.random.default_rng(1)
        for dim, rows in ((2048, 700), (3072, 500)):
            data = rng.standard_normal((rows, dim)).astype(np.float32)
            self.run_cli(cfg, "--dataset", f"b{dim}", "ingest", self.npy(f"d{dim}.npy", data))
            ups = [e for e in self.upserts(f"{RUN}-batch-{dim}") if e.get("status") == 200]
            self.assertTrue(ups)
            self.assertTrue(all(e["status"] == 200 for e in self.upserts(f"{RUN}-batch-{dim}")))
            self.assertTrue(all(e["bytes"] <= MAX_BYTES for e in ups), [e["bytes"] for e in ups])
            # Every request but the last of each write is filled to within one record of 2 MB.
            record = max(e["bytes"] for e in ups) // 2  # generous upper bound of one record's size
            record = min(record, dim * 14 + 400)
            full = sorted((e["bytes"] for e in ups), reverse=True)[: len(ups) - 1]
            self.assertTrue(all(b > MAX_BYTES - record for b in full), (dim, full))
            got = json.loads(self.run_cli(cfg, "--json", "stats").stdout)
            rows_of = {d["name"]: d["rows"] for d in got["datasets"]}
            self.assertEqual(rows_of.get(f"b{dim}"), rows)
        # Small records: the 1000-record cap decides, not bytes.
        small = rng.standard_normal((2500, 4)).astype(np.float32)
        self.run_cli(cfg, "--dataset", "small", "ingest", self.npy("small.npy", small))
        ups = self.upserts(f"{RUN}-batch-4")
        self.assertTrue(all(e["status"] == 200 for e in ups))
        self.assertEqual(len(ups), 3)  # 1000 + 1000 + 500 records

    # --- control plane ----------------------------------------------------------------------
    def test_describe_once_per_run_and_host_cached(self):
        index = f"{RUN}-desc"
        cfg = self.profile("p", index)
        data = np.random.default_rng(2).standard_normal((50, 8)).astype(np.float32)
        self.run_cli(cfg, "--dataset", "d", "ingest", self.npy("d.npy", data))
        before = len(describes(index))
        calls_before = len(data_log(index))
        self.run_cli(cfg, "--dataset", "d", "export", "-o", os.path.join(self.tmp.name, "out.npy"))
        self.run_cli(cfg, "--dataset", "d", "query", json.dumps([0.5] * 8), "-k", "3")
        self.assertEqual(len(describes(index)) - before, 2)  # one per process, two processes
        self.assertGreater(len(data_log(index)) - calls_before, 2)  # ... each making many data calls

    def test_dimension_or_metric_mismatch_with_a_fixed_index_is_a_clear_conflict(self):
        index = f"{RUN}-fixed"
        cfg = self.profile("p", index, dimension=8, metric="cosine")
        rng = np.random.default_rng(3)
        self.run_cli(cfg, "--dataset", "ok", "ingest", self.npy("a.npy", rng.standard_normal((5, 8)).astype(np.float32)))
        p = self.run_cli(cfg, "--dataset", "wide", "ingest",
                         self.npy("b.npy", rng.standard_normal((5, 16)).astype(np.float32)), check=False)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("dimension 8", p.stderr)
        self.assertIn("16", p.stderr)
        p = self.run_cli(cfg, "--dataset", "l2", "ingest", "--metric", "euclidean",
                         self.npy("c.npy", rng.standard_normal((5, 8)).astype(np.float32)), check=False)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("euclidean", p.stderr)

    # --- metadata ---------------------------------------------------------------------------
    def test_metadata_pinecone_cannot_hold_is_refused_naming_the_record(self):
        index = f"{RUN}-meta"
        cfg = self.profile("p", index)
        vec = json.dumps([0.1] * 8)
        self.run_cli(cfg, "--dataset", "m", "insert", "--id", "fine", "--vector", vec, "--metadata", '{"a": 1}')
        sent = len(self.upserts(index))
        for rid, md, word in (("row-null-7", '{"a": null}', "null"),
                              ("row-reserved-8", '{"_json": "x"}', "reserved"),
                              ("row-big-9", json.dumps({"text": "x" * 41000}), "40960")):
            p = self.run_cli(cfg, "--dataset", "m", "insert", "--id", rid, "--vector", vec, "--metadata", md,
                             check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(rid, p.stderr)
            self.assertIn(word, p.stderr)
        self.assertEqual(len(self.upserts(index)), sent)  # refused before sending
        # What Pinecone cannot hold natively is kept exactly in "_json" (documented rule).
        deep = {"tree": {"x": [1, None, {"y": "z"}]}, "nums": [1, 2], "big": 2**60, "plain": "s"}
        self.run_cli(cfg, "--dataset", "m", "insert", "--id", "deep", "--vector", vec, "--metadata", json.dumps(deep))
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "m", "get", "deep").stdout)
        self.assertEqual(got["rows"][0]["metadata"], deep)

    def test_integers_beyond_2_53_are_kept_exactly(self):
        index = f"{RUN}-bigint"
        cfg = self.profile("p", index)
        md = {"over": 2**53 + 1, "under": -(2**53 + 1), "edge": 2**53, "u64": 2**64 - 1, "small": 7, "f": 0.5}
        self.run_cli(cfg, "--dataset", "b", "insert", "--id", "a", "--vector", json.dumps([0.1] * 8),
                     "--metadata", json.dumps(md))
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "b", "get", "a").stdout)
        self.assertEqual(got["rows"][0]["metadata"], md)
        self.run_cli(cfg, "--dataset", "b", "update", "--id", "a", "--metadata", json.dumps({"small": 2**53 + 3}))
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "b", "get", "a").stdout)
        self.assertEqual(got["rows"][0]["metadata"], dict(md, small=2**53 + 3))

    # --- update -----------------------------------------------------------------------------
    def test_update_vector_through_the_cli_on_pinecone_and_the_local_store(self):
        local = os.path.join(self.tmp.name, "local.yaml")
        with open(local, "w") as f:
            f.write(f"default: l\nprofiles:\n  l:\n    type: local\n    path: {self.tmp.name}/local.db\n")
        for cfg in (self.profile("p", f"{RUN}-update"), local):
            vec, new = [0.1 * (i + 1) for i in range(8)], [1.0 - 0.1 * i for i in range(8)]
            self.run_cli(cfg, "--dataset", "u", "insert", "--id", "a", "--vector", json.dumps(vec),
                         "--metadata", '{"k": 1}')
            self.run_cli(cfg, "--dataset", "u", "update", "--id", "a", "--vector", json.dumps(new))
            got = json.loads(self.run_cli(cfg, "--json", "--dataset", "u", "get", "a", "--include-values").stdout)
            np.testing.assert_allclose(got["rows"][0]["values"], new, rtol=1e-6)
            self.assertEqual(got["rows"][0]["metadata"], {"k": 1})
            path = self.npy("new.npy", np.array(vec, dtype=np.float32))
            self.run_cli(cfg, "--dataset", "u", "update", "--id", "a", "--vector-file", path, "--metadata", '{"k": 2}')
            got = json.loads(self.run_cli(cfg, "--json", "--dataset", "u", "get", "a", "--include-values").stdout)
            np.testing.assert_allclose(got["rows"][0]["values"], vec, rtol=1e-6)
            self.assertEqual(got["rows"][0]["metadata"], {"k": 2})
            p = self.run_cli(cfg, "--dataset", "u", "update", "--id", "a", "--vector", "[1, 2]", check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("dimension", p.stderr)

    # --- counting ---------------------------------------------------------------------------
    def test_commands_do_not_count_rows_with_queries(self):
        index = f"{RUN}-count"
        cfg = self.profile("p", index)
        data = np.random.default_rng(6).standard_normal((300, 8)).astype(np.float32)
        self.run_cli(cfg, "--dataset", "c", "ingest", self.npy("d.npy", data))

        def queries():
            return len([e for e in data_log(index) if e["path"].endswith("/query")])

        before = queries()
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "c", "get", "7").stdout)
        self.assertEqual([r["id"] for r in got["rows"]], ["7"])
        self.run_cli(cfg, "--dataset", "c", "update", "--id", "7", "--metadata", '{"seen": true}')
        self.run_cli(cfg, "--dataset", "c", "insert", "--id", "new", "--vector", json.dumps([0.2] * 8))
        self.run_cli(cfg, "--dataset", "c", "delete", "--id", "8", "--yes")
        stats = json.loads(self.run_cli(cfg, "--json", "stats").stdout)
        self.assertEqual(queries(), before, "a /query was sent to count rows")
        self.assertEqual({d["name"]: d["rows"] for d in stats["datasets"]}["c"], 300)
        self.assertGreater(len([e for e in data_log(index) if e["path"].endswith("/describe_index_stats")]), 0)

    # --- consistency ------------------------------------------------------------------------
    def test_wait_polls_until_writes_are_visible(self):
        index = f"{RUN}-wait"
        vec = json.dumps([0.3] * 8)
        waiting = self.profile("w", index, wait=True)
        lazy = self.profile("l", index, wait=False)
        self.run_cli(waiting, "--dataset", "c", "insert", "--id", "first", "--vector", vec)
        hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": 1500})
        try:
            # wait: false returns before the double applies the write: the next read misses it.
            self.run_cli(lazy, "--dataset", "c", "insert", "--id", "lazy", "--vector", vec)
            p = self.run_cli(lazy, "--dataset", "c", "get", "lazy", check=False)
            self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
            wait_until(lambda: self.run_cli(lazy, "--dataset", "c", "get", "lazy", check=False).returncode == 0,
                       30, "the unwaited write to become visible")
            # wait: true polls describe_index_stats until the write's LSN is indexed.
            polls = len([e for e in data_log(index) if e["path"].endswith("/describe_index_stats")])
            self.run_cli(waiting, "--dataset", "c", "insert", "--id", "eager", "--vector", vec)
            self.run_cli(waiting, "--dataset", "c", "get", "eager")
            after = len([e for e in data_log(index) if e["path"].endswith("/describe_index_stats")])
            self.assertGreater(after - polls, 1)
        finally:
            hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": None})

    def test_catalog_counters_survive_a_lagging_read(self):
        # insert reserves its row's index (catalog write), then records row_bytes by a
        # compare-and-set from the record read before: that compare must see the reservation,
        # or next_index goes back to 0 and the next row gets index 0 again.
        index = f"{RUN}-lag"
        cfg = self.profile("g", index, wait=True)
        vec = json.dumps([0.3] * 8)
        self.run_cli(cfg, "--dataset", "c", "insert", "--id", "warm", "--vector", vec)
        hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": 300})
        try:
            for rid in ("a", "b"):
                self.run_cli(cfg, "--dataset", "c", "insert", "--id", rid, "--vector", vec)
            got = json.loads(self.run_cli(cfg, "--json", "--dataset", "c", "get", "warm", "a", "b").stdout)
            self.assertEqual([(r["id"], r["index"]) for r in got["rows"]], [("warm", 0), ("a", 1), ("b", 2)])
            stats = json.loads(self.run_cli(cfg, "--json", "stats").stdout)
            self.assertEqual({d["name"]: d["next_index"] for d in stats["datasets"]}["c"], 3)
        finally:
            hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": None})

    def test_without_wait_a_process_never_undoes_its_own_catalog_write(self):
        # wait: false skips the settle above, so the compare-and-set after insert's reservation
        # can match a lagging record read before it; the write must still not lower the
        # counters this process wrote (next_index back to where it was: the row's index reused).
        index = f"{RUN}-lagnw"
        cfg = self.profile("nw", index, wait=False)
        vec = json.dumps([0.3] * 8)
        self.run_cli(cfg, "--dataset", "c", "insert", "--id", "warm", "--vector", vec)
        wait_until(lambda: self.catalog_next_index(cfg, "c") == 1, 10, "the first insert to become visible")
        hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": 400})
        try:
            self.run_cli(cfg, "--dataset", "c", "insert", "--id", "a", "--vector", vec)
        finally:
            hook("POST", "/__double__/config", {"index": index, "consistency_delay_ms": None})
        # Before the fix the record settled at next_index 1 for good: this times out.
        wait_until(lambda: self.catalog_next_index(cfg, "c") == 2, 10, "next_index 2 (the second insert's)")
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "c", "get", "warm", "a").stdout)
        self.assertEqual([(r["id"], r["index"]) for r in got["rows"]], [("warm", 0), ("a", 1)])

    def catalog_next_index(self, cfg, dataset):
        stats = json.loads(self.run_cli(cfg, "--json", "stats").stdout)
        return {d["name"]: d["next_index"] for d in stats["datasets"]}.get(dataset)

    # --- retries ----------------------------------------------------------------------------
    def test_429_storm_503_and_dropped_connections_are_retried_without_loss_or_duplicates(self):
        index = f"{RUN}-retry"
        cfg = self.profile("p", index)
        data = np.random.default_rng(4).standard_normal((3000, 8)).astype(np.float32)
        ids = np.array([f"r{i}" for i in range(len(data))])
        hook("POST", "/__double__/faults", [
            {"index": index, "path": "/vectors/upsert", "status": 429, "retry_after": 1, "count": 2},
            {"index": index, "path": "/vectors/upsert", "status": 503, "count": 1, "after": 1},
            {"index": index, "path": "/vectors/upsert", "drop": True, "count": 1, "after": 2},
        ])
        self.run_cli(cfg, "--dataset", "r", "ingest", self.npy("d.npy", data), "--ids", self.npy("ids.npy", ids),
                     "--batch-size", "1500")
        ups = self.upserts(index)
        statuses = [e.get("status") for e in ups]
        self.assertEqual(statuses.count(429), 2, statuses)
        self.assertEqual(statuses.count(503), 1, statuses)
        self.assertEqual(statuses.count(0), 1, statuses)  # the dropped connection
        out = os.path.join(self.tmp.name, "out.npy")
        self.run_cli(cfg, "--dataset", "r", "export", "-o", out)
        got = np.load(out)
        got_ids = np.load(out[:-4] + ".ids.npy", allow_pickle=False)
        self.assertEqual(len(got_ids), len(ids))
        self.assertEqual(len(set(got_ids.tolist())), len(ids))
        order = {k: i for i, k in enumerate(got_ids.tolist())}
        np.testing.assert_array_equal(got[[order[k] for k in ids.tolist()]], data)

    def test_cut_short_replies_http_date_retry_after_and_malformed_200s(self):
        index = f"{RUN}-wire"
        cfg = self.profile("p", index)
        data = np.random.default_rng(8).standard_normal((3000, 8)).astype(np.float32)
        # A 200 that counts fewer records than were sent is not taken for an upsert of them all:
        # it is sent once more (the double applied nothing), and every row arrives.
        hook("POST", "/__double__/faults", [
            {"index": index, "path": "/vectors/upsert", "malformed": {"upsertedCount": 0}, "count": 1},
            {"index": index, "path": "/vectors/upsert", "status": 429, "retry_after_date": 2, "count": 1},
        ])
        self.run_cli(cfg, "--dataset", "w", "ingest", self.npy("d.npy", data), "--batch-size", "1000")
        ups = self.upserts(index)
        self.assertTrue(any(e.get("malformed") for e in ups))
        i429 = next(i for i, e in enumerate(ups) if e.get("status") == 429)
        self.assertGreaterEqual(ups[i429 + 1]["t"] - ups[i429]["t"], 0.9)  # Retry-After as an HTTP date
        got = json.loads(self.run_cli(cfg, "--json", "stats").stdout)
        self.assertEqual({d["name"]: d["rows"] for d in got["datasets"]}.get("w"), 3000)
        # A reply cut short (Content-Length larger than the body) is retried.
        hook("POST", "/__double__/faults", {"index": index, "path": "/query", "truncate": True, "count": 1})
        hits = json.loads(self.run_cli(cfg, "--json", "--dataset", "w", "query", json.dumps(data[7].tolist()),
                                       "-k", "1").stdout)["hits"]
        self.assertEqual([h["id"] for h in hits], ["7"])
        self.assertIn("truncated", [e.get("status") for e in data_log(index)])
        # Twice a reply that cannot be understood: exit 1 naming the request, no parser text.
        for path, wrong, args in (
                ("/query", {"matches": [{"id": "7"}]}, ("query", json.dumps(data[7].tolist()), "-k", "1")),
                ("/vectors/upsert", {"upsertedCount": 0}, ("insert", "--id", "n", "--vector", json.dumps([0.5] * 8)))):
            hook("POST", "/__double__/faults", {"index": index, "path": path, "malformed": wrong, "count": 2})
            p = self.run_cli(cfg, "--dataset", "w", *args, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(f"pinecone ", p.stderr)
            self.assertIn(f"POST /index/{index}{path}: unexpected reply:", p.stderr)
            self.assertNotIn("json.exception", p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("upsertedCount 0 for 1 records sent", p.stderr)

    def test_quota_429_is_not_retried_and_says_so(self):
        index = f"{RUN}-quota"
        cfg = self.profile("p", index)
        vec = json.dumps([0.2] * 8)
        self.run_cli(cfg, "--dataset", "q", "insert", "--id", "a", "--vector", vec)
        before = len(self.upserts(index))
        hook("POST", "/__double__/faults", {"index": index, "path": "/vectors/upsert", "quota": True, "count": 1})
        p = self.run_cli(cfg, "--dataset", "q", "insert", "--id", "b", "--vector", vec, check=False)
        self.assertNotIn(p.returncode, (0, 3), p.stderr)  # not "retry later" either
        self.assertIn("quota", p.stderr)
        self.assertIn("not retried", p.stderr)
        self.assertEqual(len(self.upserts(index)) - before, 1)

    # --- resume -----------------------------------------------------------------------------
    def test_ingest_interrupted_by_an_error_resumes_without_duplicates_or_gaps(self):
        index = f"{RUN}-resume"
        cfg = self.profile("p", index)
        data = np.random.default_rng(5).standard_normal((5000, 8)).astype(np.float32)
        path = self.npy("d.npy", data)
        # The third data upsert fails with a non-retryable 400: the ingest stops part-way.
        self.run_cli(cfg, "--dataset", "warm", "insert", "--id", "w", "--vector", json.dumps([0.1] * 8))
        hook("POST", "/__double__/faults", {"index": index, "path": "/vectors/upsert", "status": 400,
                                            "message": "injected failure", "count": 1, "after": 6})
        p = self.run_cli(cfg, "--dataset", "res", "ingest", path, "--batch-size", "1000", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("injected failure", p.stderr)
        self.run_cli(cfg, "--dataset", "res", "ingest", path, "--batch-size", "1000", "--resume")
        out = os.path.join(self.tmp.name, "out.npy")
        self.run_cli(cfg, "--dataset", "res", "export", "-o", out)
        got_ids = np.load(out[:-4] + ".ids.npy", allow_pickle=False)
        self.assertEqual(sorted(got_ids.tolist(), key=int), [str(i) for i in range(len(data))])
        np.testing.assert_array_equal(np.load(out), data)

    # --- request mechanics ------------------------------------------------------------------
    def test_ids_with_spaces_and_plus_signs_round_trip(self):
        index = f"{RUN}-ids"
        cfg = self.profile("p", index)
        for rid in ("doc 1", "a+b", "x#y/z?"):
            self.run_cli(cfg, "--dataset", "i", "insert", "--id", rid, "--vector", json.dumps([0.4] * 8))
        got = json.loads(self.run_cli(cfg, "--json", "--dataset", "i", "get", "doc 1", "a+b", "x#y/z?").stdout)
        self.assertEqual([r["id"] for r in got["rows"]], ["doc 1", "a+b", "x#y/z?"])
        fetches = [e for e in data_log(index) if e["path"].endswith("/vectors/fetch")]
        self.assertTrue(any("ids=doc%201" in e["query"] for e in fetches))
        self.assertFalse(any("doc+1" in e["query"] for e in fetches))

    def test_api_version_pinned_and_key_never_printed(self):
        index = f"{RUN}-hdr"
        cfg = self.profile("p", index)
        self.run_cli(cfg, "--dataset", "h", "insert", "--id", "a", "--vector", json.dumps([0.4] * 8))
        self.run_cli(cfg, "-v", "-v", "--json", "stats")
        self.run_cli(cfg, "profiles", "show")
        self.run_cli(cfg, "--json", "profiles", "show")
        # A wrong key: the 401 is reported (check api_key), and neither key is printed.
        wrong = "pcsk-wrong-key-0123456789abcdef"
        p = self.run_cli(cfg, "-v", "--dataset", "h", "get", "a", check=False, env_extra={"PINECONE_API_KEY": wrong})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("api_key", p.stderr)
        self.assertNotIn(wrong, p.stdout + p.stderr)
        log = [e for e in hook("GET", "/__double__/requests") if e.get("index") == index
               or e["path"] == f"/indexes/{index}"]
        self.assertTrue(log)
        self.assertEqual({e["api_version"] for e in log}, {"2026-04"})
        version = self.run_cli(cfg, "--version").stdout.split()[1]
        self.assertEqual({e["user_agent"] for e in log}, {f"vstash/{version}"})

    def test_batches_are_fetched_by_id_without_queries(self):
        # Issue 17: a batch fetches its rows by id (GET /vectors/fetch); positions come from
        # describe_index_stats when the dataset has no gaps, so no filtered /query (which the
        # service answers by scanning) is sent, with or without workers.
        index = f"{RUN}-byid"
        cfg = self.profile("p", index)
        n = 300
        data = np.random.default_rng(9).standard_normal((n, 8)).astype(np.float32)
        self.run_cli(cfg, "--dataset", "b", "ingest", self.npy("d.npy", data), "--labels",
                     self.npy("l.npy", np.arange(n, dtype=np.int64)))
        env = dict(os.environ, VSTASH_CONFIG=cfg, VSTASH_NO_PROGRESS="1", PINECONE_API_KEY=self.key)
        for workers in (0, 3):
            seen = len(data_log(index))
            p = subprocess.run([VSTASH, "--dataset", "b", "batch", "--stream", "--size", "30", "--shuffle", "--seed",
                                "4", "--workers", str(workers), "-o", "-"], env=env, capture_output=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            rows = []
            for x, labels in npy_stream_pairs(p.stdout):
                np.testing.assert_array_equal(x, data[labels])
                rows += [int(v) for v in labels]
            self.assertEqual(sorted(rows), list(range(n)))
            log = data_log(index)[seen:]
            self.assertEqual([e["path"] for e in log if e["path"].endswith("/query")], [])
            fetches = [e for e in log if e["path"].endswith("/vectors/fetch") and "namespace=b&" in e["query"]]
            self.assertEqual(len(fetches), 10)  # one per batch (the catalog's are another namespace)


if __name__ == "__main__":
    unittest.main(verbosity=2)
