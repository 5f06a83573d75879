#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of the vstash binary on the local store: every command's happy path, the
exit codes of README's table, one-line errors naming what is at fault (with the store left
unchanged), no half-written output files, parseable --json, redacted secrets, --quiet and
progress-bar behaviour, and options from VSTASH_* variables.

Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/cli_test.py [-v] [Class.test]
Each test gets its own temp dir, HOME and XDG dirs, and a vstash.yaml whose local store lives
in that dir; no VSTASH_* variable of the caller leaks in.
"""
import json
import os
import pty
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

VSTASH = os.environ.get("VSTASH_BIN", "")
COMMANDS = ["ingest", "batch", "export", "query", "insert", "update", "get", "delete",
            "checkpoint", "stats", "profiles", "progress"]
SECRET = "hunter2-S3CRET-pw"


class CliTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(VSTASH and os.access(VSTASH, os.X_OK), f"VSTASH_BIN={VSTASH!r} is not an executable")
        self.dir = tempfile.mkdtemp(prefix="vstash-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.store = os.path.join(self.dir, "store", "local.db")
        self.config = self.path("test-profiles.yaml")
        self.write("test-profiles.yaml", f"profiles:\n  local:\n    type: local\n    path: {self.store}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VSTASH_")}
        for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "home/.config"),
                         ("XDG_DATA_HOME", "home/.local/share")):
            env[var] = self.path(sub)
            os.makedirs(env[var], exist_ok=True)
        env["VSTASH_CONFIG"] = self.config
        self.env = env

    # ---- helpers ----------------------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def run_vstash(self, *args, env=None, stdin=subprocess.DEVNULL, **kw):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([VSTASH, *args], cwd=self.dir, env=e, stdin=stdin, capture_output=True,
                              text=True, timeout=300, **kw)

    def ok(self, *args, **kw):
        r = self.run_vstash(*args, **kw)
        self.assertEqual(r.returncode, 0, f"vstash {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def ok_json(self, *args, **kw):
        r = self.ok(*args, "--json", **kw)
        return json.loads(r.stdout)

    def fails(self, code, *args, contains=(), **kw):
        """Runs vstash, asserts the exit code and a one-line error naming each of `contains`."""
        r = self.run_vstash(*args, **kw)
        where = f"vstash {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        self.assertEqual(r.returncode, code, where)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"error must be one line on stderr\n{where}")
        self.assertTrue(lines[0].startswith("vstash: error: "), where)
        for text in contains:
            self.assertIn(text, lines[0], where)
        self.assertNotIn(SECRET, r.stderr + r.stdout)
        return lines[0]

    def snapshot(self):
        """The store's observable state: stats plus every dataset exported, for 'unchanged'."""
        stats = self.ok_json("stats")
        stats.pop("store_bytes", None)
        rows = {}
        for d in stats["datasets"]:
            d.pop("bytes", None)
            out = self.path(f"snap-{d['name']}.h5")
            self.ok("export", "--dataset", d["name"], "-o", out)
            with h5py.File(out, "r") as f:
                rows[d["name"]] = {k: f[k][()].tolist() for k in f.keys()}
            os.remove(out)
            meta = self.path(f"snap-{d['name']}.metadata.jsonl")
            if os.path.exists(meta):
                rows[d["name"]]["metadata"] = read_text(meta)
                os.remove(meta)
        return stats, rows

    def make_dataset(self, name="vecs", n=50, dim=4, seed=1):
        """Ingests n rows with int labels and metadata {"i", "group", "even"}; returns (data, labels)."""
        rng = np.random.default_rng(seed)
        data = rng.normal(size=(n, dim)).astype(np.float32)
        labels = (np.arange(n) % 3).astype(np.int64)
        np.save(self.path(f"{name}.npy"), data)
        np.save(self.path(f"{name}.labels.npy"), labels)
        with open(self.path(f"{name}.meta.jsonl"), "w") as f:
            for i in range(n):
                f.write(json.dumps({"i": i, "group": ["a", "b", "c"][i % 3], "even": i % 2 == 0}) + "\n")
        self.ok("ingest", f"{name}.npy", "--labels", f"{name}.labels.npy", "--metadata", f"{name}.meta.jsonl",
                "--dataset", name, "--metric", "euclidean")
        return data, labels

    def files_in_dir(self):
        return sorted(os.listdir(self.dir))


class HelpAndVersion(CliTest):
    def test_help_lists_every_command(self):
        r = self.ok("--help")
        for c in COMMANDS:
            self.assertRegex(r.stdout, rf"(?m)^\s+{c}\b", c)
        self.assertEqual(r.stderr, "")

    def test_every_command_has_help(self):
        for c in COMMANDS + ["checkpoint save", "checkpoint load", "checkpoint list", "profiles list",
                             "profiles show"]:
            r = self.ok(*c.split(), "--help")
            self.assertIn("Usage", r.stdout + r.stderr, c)

    def test_version_lists_backends(self):
        r = self.ok("--version")
        self.assertRegex(r.stdout, r"^vstash \d+\.\d+\.\d+")
        self.assertIn("local", r.stdout)

    def test_no_command_is_a_usage_error(self):
        self.fails(2)


class Ingest(CliTest):
    def test_npy_with_labels_ids_metadata_round_trips_exactly(self):
        data = (np.arange(30 * 2 * 3, dtype=np.float64).reshape(30, 2, 3) / 7).astype(">f8")  # big-endian, 2-D rows
        labels = np.arange(30, dtype=np.int16)
        ids = np.array([f"row-{i:03d}" for i in range(30)])
        np.save(self.path("d.npy"), data)
        np.save(self.path("l.npy"), labels)
        np.save(self.path("ids.npy"), ids)
        with open(self.path("m.jsonl"), "w") as f:
            for i in range(30):
                f.write(json.dumps({"n": i}) + "\n")
        res = self.ok_json("ingest", "d.npy", "--labels", "l.npy", "--ids", "ids.npy", "--metadata", "m.jsonl",
                           "--dataset", "cube")
        self.assertEqual(res["rows"], 30)
        self.assertEqual(res["shape"], [2, 3])
        stats = self.ok_json("stats", "--dataset", "cube")
        (d,) = stats["datasets"]
        self.assertEqual((d["name"], d["rows"], d["dimension"], d["dtype"], d["shape"], d["metric"]),
                         ("cube", 30, 6, "float64", [2, 3], "cosine"))
        res = self.ok_json("export", "--dataset", "cube", "-o", "out.npy")
        self.assertEqual(res["rows"], 30)
        back = np.load(self.path("out.npy"))
        self.assertEqual(back.shape, data.shape)
        self.assertEqual(back.astype("<f8").tobytes(), data.astype("<f8").tobytes())
        self.assertEqual(np.load(self.path("out.labels.npy")).tolist(), labels.tolist())
        self.assertEqual(np.load(self.path("out.labels.npy")).dtype, np.int16)
        self.assertEqual(np.load(self.path("out.ids.npy")).tolist(), ids.tolist())
        meta = [json.loads(line) for line in read_text(self.path(res["metadata_file"])).splitlines()]
        self.assertEqual(meta, [{"n": i} for i in range(30)])

    def test_hdf5_group_paths_round_trip(self):
        data = np.random.default_rng(3).integers(0, 255, size=(40, 8), dtype=np.uint8)
        labels = np.linspace(0, 1, 40)
        with h5py.File(self.path("in.h5"), "w") as f:
            f.create_dataset("grp/x", data=data, chunks=(8, 8), compression="gzip")
            f.create_dataset("grp/y", data=labels)
        res = self.ok_json("ingest", "in.h5:/grp/x", "--labels", "in.h5:/grp/y", "--dataset", "bytes")
        self.assertEqual((res["rows"], res["dtype"]), (40, "uint8"))
        self.ok("export", "--dataset", "bytes", "-o", "out.h5")
        with h5py.File(self.path("out.h5"), "r") as f:
            self.assertEqual(f["data"].dtype, np.uint8)
            np.testing.assert_array_equal(f["data"][()], data)
            np.testing.assert_array_equal(f["labels"][()], labels)

    def test_ann_benchmarks_file_uses_its_metric_and_answers_exactly(self):
        rng = np.random.default_rng(5)
        train = rng.normal(size=(200, 8)).astype(np.float32)
        test = rng.normal(size=(3, 8)).astype(np.float32)
        dist = np.linalg.norm(train[None, :, :] - test[:, None, :], axis=2)
        neighbors = np.argsort(dist, axis=1, kind="stable")[:, :5]
        with h5py.File(self.path("ann.hdf5"), "w") as f:
            f.attrs["distance"] = "euclidean"
            f["train"], f["test"], f["neighbors"] = train, test, neighbors.astype(np.int32)
            f["distances"] = np.take_along_axis(dist, neighbors, axis=1).astype(np.float32)
        r = self.ok("ingest", "ann.hdf5", "--dataset", "ann")
        self.assertIn("ann-benchmarks", r.stderr)
        (d,) = self.ok_json("stats", "--dataset", "ann")["datasets"]
        self.assertEqual((d["rows"], d["metric"]), (200, "euclidean"))
        r = self.ok("query", "--dataset", "ann", "--queries", "ann.hdf5:/test", "-k", "5")
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([q["query"] for q in lines], [0, 1, 2])
        for q in lines:
            self.assertEqual([int(h["id"]) for h in q["hits"]], neighbors[q["query"]].tolist())
            scores = [h["score"] for h in q["hits"]]
            np.testing.assert_allclose(scores, dist[q["query"], neighbors[q["query"]]], rtol=1e-5)

    def test_jsonl_records(self):
        with open(self.path("recs.jsonl"), "w") as f:
            for i in range(5):
                f.write(json.dumps({"id": f"doc{i}", "vector": [i, 1.0, 0.5], "label": i % 2,
                                    "metadata": {"lang": "en" if i < 3 else "fr"}}) + "\n")
        self.ok("ingest", "recs.jsonl", "--dataset", "docs")
        got = self.ok_json("get", "--dataset", "docs", "doc3", "--include-values")
        (row,) = got["rows"]
        self.assertEqual((row["id"], row["label"], row["metadata"], row["values"]),
                         ("doc3", 1, {"lang": "fr"}, [3.0, 1.0, 0.5]))

    def test_dry_run_writes_nothing(self):
        self.make_dataset("keep")
        before = self.snapshot()
        np.save(self.path("new.npy"), np.ones((7, 3), np.float32))
        r = self.ok("ingest", "new.npy", "--dataset", "fresh", "--dry-run")
        self.assertIn("dry run", r.stdout)
        self.assertIn("7 rows", r.stdout)
        res = self.ok_json("ingest", "new.npy", "--dataset", "fresh", "--dry-run")
        self.assertEqual((res["dry_run"], res["rows"]), (True, 7))
        self.assertEqual(self.snapshot(), before)

    def test_second_ingest_is_a_conflict_and_append_adds(self):
        self.make_dataset("v", n=10)
        before = self.snapshot()
        self.fails(5, "ingest", "v.npy", "--dataset", "v", contains=['"v"', "--append"])
        self.assertEqual(self.snapshot(), before)
        self.ok("ingest", "v.npy", "--labels", "v.labels.npy", "--dataset", "v", "--append")
        self.assertEqual(self.ok_json("stats", "--dataset", "v")["datasets"][0]["rows"], 20)

    def test_interrupted_ingest_exits_130_and_resume_finishes_without_duplicates(self):
        n = 400_000
        data = np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 1
        np.save(self.path("big.npy"), data)
        e = dict(self.env)
        proc = subprocess.Popen([VSTASH, "ingest", "big.npy", "--dataset", "big", "--batch-size", "100", "--no-index"],
                                cwd=self.dir, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        rows = 0
        while time.monotonic() < deadline and proc.poll() is None:
            r = self.run_vstash("stats", "--json")
            if r.returncode == 0:
                ds = [d for d in json.loads(r.stdout)["datasets"] if d["name"] == "big"]
                rows = ds[0]["rows"] if ds else 0
                if rows > 0:
                    break
        self.assertGreater(rows, 0, "ingest never showed progress")
        self.assertIsNone(proc.poll(), "ingest finished before it could be interrupted")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        self.assertEqual(err.strip().splitlines()[-1], "vstash: error: interrupted")
        (d,) = self.ok_json("stats", "--dataset", "big")["datasets"]
        self.assertLess(d["rows"], n)
        # --no-index: building the ANN index over 400k rows is not what this test is about.
        res = self.ok_json("ingest", "big.npy", "--dataset", "big", "--resume", "--batch-size", "20000", "--no-index")
        self.assertGreater(res["skipped_rows"], 0)
        (d,) = self.ok_json("stats", "--dataset", "big")["datasets"]
        self.assertEqual(d["rows"], n)
        self.ok("export", "--dataset", "big", "-o", "big-out.npy")
        back = np.load(self.path("big-out.npy"))
        np.testing.assert_array_equal(back, data)
        self.assertEqual(np.load(self.path("big-out.ids.npy")).tolist(), [str(i) for i in range(n)])


class Query(CliTest):
    def test_filter_json_and_text(self):
        data, _ = self.make_dataset("q", n=60)
        q = data[10].tolist()
        res = self.ok_json("query", "--dataset", "q", json.dumps(q), "-k", "5",
                           "--filter", '{"group": {"$in": ["a", "b"]}, "even": true}')
        self.assertEqual((res["dataset"], res["k"], res["metric"]), ("q", 5, "euclidean"))
        hits = res["hits"]
        self.assertEqual(len(hits), 5)
        self.assertEqual(hits[0]["id"], "10")
        self.assertAlmostEqual(hits[0]["score"], 0.0, places=5)
        for h in hits:
            self.assertIn(h["metadata"]["group"], ("a", "b"))
            self.assertTrue(h["metadata"]["even"])
        self.assertEqual([h["score"] for h in hits], sorted(h["score"] for h in hits))
        # The same answer as numpy.
        ok = [i for i in range(60) if i % 3 in (0, 1) and i % 2 == 0]
        dist = np.linalg.norm(data[ok] - data[10], axis=1)
        expect = [str(ok[j]) for j in np.argsort(dist, kind="stable")[:5]]
        self.assertEqual([h["id"] for h in hits], expect)
        r = self.ok("query", "--dataset", "q", json.dumps(q), "-k", "3", "--filter", '{"group": "c"}')
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["rank", "id", "score", "metadata"])
        self.assertEqual(len(lines), 4)
        self.assertIn('"group":"c"', lines[1])

    def test_filter_from_file_vector_from_file_include_values(self):
        data, _ = self.make_dataset("q", n=20)
        np.save(self.path("qv.npy"), data[4])
        self.write("f.json", '{"i": {"$gte": 4, "$lt": 6}}')
        res = self.ok_json("query", "--dataset", "q", "--vector-file", "qv.npy", "--filter", "@f.json",
                           "--include-values", "-k", "10")
        self.assertEqual([h["id"] for h in res["hits"]], ["4", "5"])
        np.testing.assert_allclose(res["hits"][0]["values"], data[4], rtol=1e-6)
        res = self.ok_json("query", "--dataset", "q", "--vector-file", "qv.npy", "--no-metadata", "-k", "1")
        self.assertNotIn("metadata", res["hits"][0])

    def test_query_usage_errors(self):
        self.make_dataset("q", n=5)
        self.fails(2, "query", "--dataset", "q", contains=["VECTOR"])
        self.fails(2, "query", "--dataset", "q", "[1,2,3,4]", "-k", "0", contains=["-k"])
        self.fails(2, "query", "--dataset", "q", "[1,2,oops]", contains=["VECTOR", "JSON"])
        self.fails(4, "query", "--dataset", "nope", "[1,2,3,4]", contains=['"nope"'])


class Rows(CliTest):
    def test_insert_get_update_delete(self):
        r = self.ok("insert", "--dataset", "items", "--id", "a", "--vector", "[1, 0, 0]", "--metadata",
                    '{"color": "red", "size": 3}')
        self.assertIn("created dataset", r.stderr)
        self.ok("insert", "--dataset", "items", "--id", "b", "--vector", "[0, 1, 0]")
        self.fails(5, "insert", "--dataset", "items", "--id", "a", "--vector", "[0, 0, 1]",
                   contains=['"a"', "--upsert"])
        res = self.ok_json("insert", "--dataset", "items", "--id", "a", "--vector", "[0, 0, 1]", "--upsert",
                           "--metadata", '{"color": "blue", "size": 3}')
        self.assertEqual(res, {"dataset": "items", "id": "a", "upsert": True})
        self.ok("update", "--dataset", "items", "--id", "a", "--metadata", '{"size": null, "tag": "x"}')
        got = self.ok_json("get", "--dataset", "items", "a", "b", "--include-values")
        self.assertEqual(got["missing"], [])
        by_id = {row["id"]: row for row in got["rows"]}
        self.assertEqual(by_id["a"]["metadata"], {"color": "blue", "tag": "x"})
        self.assertEqual(by_id["a"]["values"], [0.0, 0.0, 1.0])
        self.ok("update", "--dataset", "items", "--id", "b", "--vector", "[0.5, 0.5, 0]")
        got = self.ok_json("get", "--dataset", "items", "b", "--include-values")
        self.assertEqual(got["rows"][0]["values"], [0.5, 0.5, 0.0])
        text = self.ok("get", "--dataset", "items", "a").stdout
        self.assertEqual(text.splitlines()[0].split(), ["id", "index", "label", "metadata"])
        # get with one missing id: the found row is printed, exit 4 names the missing one.
        r = self.run_vstash("get", "--dataset", "items", "a", "zzz", "--json")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(json.loads(r.stdout)["missing"], ["zzz"])
        self.assertIn('"zzz"', r.stderr)
        self.fails(4, "update", "--dataset", "items", "--id", "zzz", "--metadata", "{}", contains=["zzz"])
        res = self.ok_json("delete", "--dataset", "items", "--id", "a")
        self.assertEqual(res["deleted"], 1)
        self.fails(4, "get", "--dataset", "items", "a", contains=['"a"'])
        self.fails(2, "insert", "--dataset", "items", "--id", "c", "--vector", "[1, 2]",
                   contains=["--vector", "dimension 2", "dimension 3"])
        self.fails(2, "update", "--dataset", "items", "--id", "b", "--vector", "[1, 2, 3, 4]",
                   contains=["dimension 4"])
        self.fails(2, "insert", "--dataset", "items", "--id", "c", "--vector", "[1, 2, 3]", "--metadata", "[1]",
                   contains=["--metadata", "object"])

    def test_bulk_delete_needs_yes_and_dry_run_changes_nothing(self):
        self.make_dataset("d", n=30)
        before = self.snapshot()
        self.fails(2, "delete", "--dataset", "d", "--filter", '{"group": "a"}', contains=["--yes"])
        r = self.ok("delete", "--dataset", "d", "--filter", '{"group": "a"}', "--dry-run")
        self.assertIn("would delete 10 rows", r.stdout)
        res = self.ok_json("delete", "--dataset", "d", "--ids", "1,2,3", "--dry-run")
        self.assertEqual((res["matched"], res["deleted"]), (3, 0))
        self.fails(2, "delete", "--dataset", "d", "--dataset-all", contains=["--yes"])
        self.assertEqual(self.snapshot(), before)
        res = self.ok_json("delete", "--dataset", "d", "--filter", '{"group": "a"}', "--yes")
        self.assertEqual(res["deleted"], 10)
        self.assertEqual(self.ok_json("stats", "--dataset", "d")["datasets"][0]["rows"], 20)
        res = self.ok_json("delete", "--dataset", "d", "--ids", "1,2", "--yes")
        self.assertEqual(res["deleted"], 2)
        self.ok("delete", "--dataset", "d", "--dataset-all", "--yes")
        self.fails(4, "stats", "--dataset", "d", contains=['"d"'])
        self.fails(2, "delete", "--dataset", "d", contains=["--ids"])

    def test_batch_and_checkpoint_round_trip(self):
        data, labels = self.make_dataset("b", n=40)
        res = self.ok_json("batch", "--dataset", "b", "--size", "8", "--offset", "16", "-o", "batch.npy")
        self.assertEqual(res["rows"], 8)
        np.testing.assert_array_equal(np.load(self.path("batch.npy")), data[16:24])
        np.testing.assert_array_equal(np.load(self.path("batch.labels.npy")), labels[16:24])
        params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, 2], np.int64)}
        with h5py.File(self.path("params.h5"), "w") as f:
            for k, v in params.items():
                f[k] = v
        res = self.ok_json("checkpoint", "save", "--model", "net", "--epoch", "2", "--params", "params.h5",
                           "--metric", "loss=0.5")
        path = res["path"]
        self.assertIn("net", path)
        res = self.ok_json("checkpoint", "load", "net@latest", "-o", "back.h5")
        self.assertEqual((res["path"], res["epoch"], res["metrics"]), (path, 2, {"loss": 0.5}))
        with h5py.File(self.path("back.h5"), "r") as f:
            for k, v in params.items():
                np.testing.assert_array_equal(f[k][()], v)
        self.assertEqual(len(self.ok_json("checkpoint", "list")["checkpoints"]), 1)
        self.fails(4, "checkpoint", "load", "net@7", contains=["net"])
        self.ok("delete", "--checkpoint", "net@latest")
        self.assertEqual(self.ok_json("checkpoint", "list")["checkpoints"], [])

    def test_saving_an_epoch_again_is_a_conflict_unless_overwrite(self):
        np.save(self.path("p1.npy"), np.arange(6, dtype=np.float32))
        np.save(self.path("p2.npy"), np.arange(6, dtype=np.float32) * 2)
        self.ok("checkpoint", "save", "--model", "net", "--epoch", "3", "--params", "p1.npy", "--metric", "loss=0.5")
        line = self.fails(5, "checkpoint", "save", "--model", "net", "--epoch", "3", "--params", "p2.npy",
                          "--metric", "loss=0.9", contains=['checkpoint "net@3" already exists', "--overwrite"])
        self.assertIn(self.store, line)
        res = self.ok_json("checkpoint", "load", "net@3", "-o", "back.npy")
        self.assertEqual(res["metrics"], {"loss": 0.5})  # the first save's metrics are kept
        np.testing.assert_array_equal(np.load(self.path("back.npy")), np.arange(6, dtype=np.float32))
        res = self.ok_json("checkpoint", "save", "--model", "net", "--epoch", "3", "--params", "p2.npy",
                           "--metric", "loss=0.9", "--overwrite", "--keep", "1")
        self.assertEqual((res["path"], res["deleted"]), ("net@3", []))
        res = self.ok_json("checkpoint", "load", "net@latest", "-o", "back.npy")
        self.assertEqual((res["epoch"], res["metrics"]), (3, {"loss": 0.9}))
        np.testing.assert_array_equal(np.load(self.path("back.npy")), np.arange(6, dtype=np.float32) * 2)


class Stats(CliTest):
    def test_text_and_json(self):
        self.make_dataset("s1", n=12, dim=5)
        self.make_dataset("s2", n=3, dim=2)
        st = self.ok_json("stats")
        self.assertEqual(st["backend"], "local")
        self.assertGreater(st["store_bytes"], 0)
        by = {d["name"]: d for d in st["datasets"]}
        self.assertEqual((by["s1"]["rows"], by["s1"]["dimension"], by["s1"]["label_dtype"]), (12, 5, "int64"))
        self.assertEqual((by["s2"]["rows"], by["s2"]["dimension"]), (3, 2))
        text = self.ok("stats").stdout
        self.assertIn("backend: local", text)
        self.assertRegex(text, r"(?m)^s1\s+12\s+5\s+float32")
        self.assertRegex(text, r"(?m)^s2\s+3\s+2\s+float32")


class Profiles(CliTest):
    def secret_config(self):
        self.write("secret.yaml", f"""default: local
profiles:
  local:
    type: local
    path: {self.store}
  pg:
    type: pgvector
    host: 127.0.0.1
    port: 1
    database: db
    user: u
    password: {SECRET}
    table_name: t
  pine:
    type: pinecone
    api_key: ${{PINE_KEY}}
    environment: us-east-1
    index_name: idx
""")
        return {"VSTASH_CONFIG": self.path("secret.yaml"), "PINE_KEY": SECRET}

    def test_list_and_show_redact_secrets(self):
        env = self.secret_config()
        r = self.ok("profiles", "list", env=env)
        self.assertRegex(r.stdout, r"(?m)^\*\s+local\s+local")
        self.assertRegex(r.stdout, r"(?m)^\s+pg\s+pgvector")
        lst = self.ok_json("profiles", "list", env=env)
        self.assertEqual(sorted(p["name"] for p in lst["profiles"]), ["local", "pg", "pine"])
        self.assertEqual(lst["default"], "local")
        for name in ("pg", "pine"):
            for args in (("profiles", "show", name), ("profiles", "show", name, "--json"),
                         ("--profile", name, "profiles", "show")):
                r = self.ok(*args, env=env)
                self.assertNotIn(SECRET, r.stdout + r.stderr)
                self.assertIn("***", r.stdout)
        show = self.ok_json("profiles", "show", "pg", env=env)
        self.assertEqual(show["values"]["password"], "***")
        self.assertEqual(show["values"]["host"], "127.0.0.1")

    def test_errors_of_a_secret_profile_never_print_the_secret(self):
        env = self.secret_config()
        for profile in ("pg", "pine"):
            r = self.run_vstash("--profile", profile, "-v", "stats", env=env)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn(SECRET, r.stdout + r.stderr)
        self.write("bad.yaml", f"profiles:\n  pg:\n    type: pgvector\n    pasword: {SECRET}\n")
        line = self.fails(2, "stats", env={"VSTASH_CONFIG": self.path("bad.yaml")}, contains=["bad.yaml:4", "pasword"])
        self.assertNotIn(SECRET, line)

    def test_no_config_means_builtin_local_store(self):
        env = {"VSTASH_CONFIG": ""}
        del self.env["VSTASH_CONFIG"]
        lst = self.ok_json("profiles", "list", env=env)
        self.assertEqual(lst["file"], None)
        self.assertEqual([p["name"] for p in lst["profiles"]], ["local"])
        self.ok("insert", "--id", "x", "--vector", "[1,2]", env=env)
        self.assertTrue(os.path.exists(os.path.join(self.env["XDG_DATA_HOME"], "vstash", "local.db")))


class ExitCodesAndErrors(CliTest):
    """README's table: 0 ok, 2 usage/bad input, 3 retryable, 4 not found, 5 conflict."""

    def setUp(self):
        super().setUp()
        self.make_dataset("base", n=10)
        self.before = self.snapshot()

    def tearDown(self):
        self.assertEqual(self.snapshot(), self.before, "store changed by a failing command")

    def test_unknown_flag(self):
        self.fails(2, "ingest", "base.npy", "--dataset", "x", "--bogus-flag", contains=["--bogus-flag"])
        self.fails(2, "--bogus-global", "stats", contains=["--bogus-global"])
        self.fails(2, "frobnicate", contains=["frobnicate"])

    def test_missing_file(self):
        self.fails(2, "ingest", "no-such.npy", "--dataset", "x", contains=["no-such.npy"])
        self.fails(2, "ingest", "base.npy", "--labels", "no-labels.npy", "--dataset", "x",
                   contains=["no-labels.npy"])
        self.fails(2, "ingest", "missing.h5:/x", "--dataset", "x", contains=["missing.h5"])
        self.fails(2, "query", "--dataset", "base", "--filter", "@nofilter.json", "[1,2,3,4]",
                   contains=["nofilter.json"])

    def test_bad_dtype_and_corrupt_files(self):
        np.save(self.path("obj.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        self.fails(2, "ingest", "obj.npy", "--dataset", "x", contains=["obj.npy"])
        np.save(self.path("c.npy"), np.zeros((4, 2), np.complex64))
        self.fails(2, "ingest", "c.npy", "--dataset", "x", contains=["c.npy"])
        with open(self.path("base.npy"), "rb") as f:
            raw = f.read()
        with open(self.path("trunc.npy"), "wb") as f:
            f.write(raw[: len(raw) // 2])
        self.fails(2, "ingest", "trunc.npy", "--dataset", "x", contains=["trunc.npy"])
        self.write("noth5.h5", "this is not HDF5\n")
        self.fails(2, "ingest", "noth5.h5:/data", "--dataset", "x", contains=["noth5.h5"])
        with h5py.File(self.path("ok.h5"), "w") as f:
            f["data"] = np.ones((3, 2), np.float32)
        self.fails(2, "ingest", "ok.h5:/nope", "--dataset", "x", contains=["ok.h5", "nope"])

    def test_nan_and_count_mismatch(self):
        bad = np.ones((6, 4), np.float32)
        bad[3, 1] = np.nan
        np.save(self.path("nan.npy"), bad)
        self.fails(2, "ingest", "nan.npy", "--dataset", "x", contains=["nan.npy", "NaN", "3"])
        np.save(self.path("l5.npy"), np.arange(5))
        self.fails(2, "ingest", "base.npy", "--labels", "l5.npy", "--dataset", "x", contains=["l5.npy", "5", "10"])
        self.write("meta3.jsonl", "{}\n{}\n{}\n")
        self.fails(2, "ingest", "base.npy", "--metadata", "meta3.jsonl", "--dataset", "x", contains=["meta3.jsonl"])

    def test_malformed_filter(self):
        self.fails(2, "query", "--dataset", "base", "[1,2,3,4]", "--filter", '{"group": ', contains=["--filter"])
        self.fails(2, "query", "--dataset", "base", "[1,2,3,4]", "--filter", '{"x": {"$regex": "a"}}',
                   contains=["$regex"])
        self.fails(2, "delete", "--dataset", "base", "--filter", '{"$or": 3}', "--yes", contains=["$or"])

    def test_dimension_mismatch(self):
        self.fails(2, "query", "--dataset", "base", "[1,2,3]", contains=["dimension 3", "dimension 4"])
        np.save(self.path("q5.npy"), np.ones((2, 5), np.float32))
        self.fails(2, "query", "--dataset", "base", "--queries", "q5.npy", contains=["q5.npy", "dimension 5"])
        self.fails(2, "insert", "--dataset", "base", "--id", "new", "--vector", "[1,2]", "--label", "1",
                   contains=["dimension 2"])

    def test_unknown_profile_and_bad_yaml(self):
        self.fails(4, "--profile", "nosuch", "stats", contains=['"nosuch"'])
        self.write("broken.yaml", "profiles:\n  local:\n    type: local\n    path: [unclosed\n")
        self.fails(2, "stats", env={"VSTASH_CONFIG": self.path("broken.yaml")}, contains=["broken.yaml:"])
        self.write("wrongtype.yaml", "profiles:\n  pg:\n    type: pgvector\n    port: many\n")
        self.fails(2, "--profile", "pg", "stats", env={"VSTASH_CONFIG": self.path("wrongtype.yaml")},
                   contains=["wrongtype.yaml:4", "port"])
        self.fails(2, "--config", "absent.yaml", "stats", contains=["absent.yaml"])

    def test_not_found(self):
        self.fails(4, "export", "--dataset", "ghost", "-o", "g.npy", contains=['"ghost"'])
        self.fails(4, "get", "--dataset", "ghost", "1", contains=['"ghost"'])
        self.fails(4, "delete", "--dataset", "ghost", "--id", "1", contains=['"ghost"'])
        self.fails(4, "delete", "--checkpoint", "ghost@latest", contains=["ghost"])
        self.assertFalse(os.path.exists(self.path("g.npy")))

    def test_conflict(self):
        self.fails(5, "insert", "--dataset", "base", "--id", "3", "--vector", "[1,2,3,4]", "--label", "1",
                   contains=['"3"'])
        self.fails(5, "ingest", "base.npy", "--dataset", "base", contains=['"base"'])

    def test_retryable_server_down(self):
        backends = self.ok("--version").stdout
        port = free_port()
        if "qdrant" in backends:
            cfg = f"profiles:\n  q:\n    type: qdrant\n    host: 127.0.0.1\n    port: {port}\n" \
                  "    collection_name: c\n    max_attempts: 1\n"
        elif "pgvector" in backends:
            cfg = f"profiles:\n  q:\n    type: pgvector\n    host: 127.0.0.1\n    port: {port}\n" \
                  f"    database: d\n    user: u\n    password: {SECRET}\n    table_name: t\n"
        elif "redis" in backends:
            cfg = f"profiles:\n  q:\n    type: redis\n    host: 127.0.0.1\n    port: {port}\n"
        else:
            self.fail(f"no network backend compiled in ({backends.strip()}): exit 3 cannot be shown")
        self.write("down.yaml", cfg)
        self.fails(3, "--profile", "q", "stats", env={"VSTASH_CONFIG": self.path("down.yaml")},
                   contains=[f"127.0.0.1:{port}"])


def documented_json_keys():
    """docs/cli.md's table: command -> the top-level keys it documents (outside [...])."""
    import re
    src = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    out = {}
    for line in read_text(os.path.join(src, "docs", "cli.md")).splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if m:
            out[m.group(1)] = set(re.findall(r"`([a-z_]+)`", re.sub(r"\[[^\]]*\]", "", m.group(2))))
    return out


def read_text(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoHalfWrittenOutput(CliTest):
    def test_failed_export_leaves_no_file_and_keeps_the_old_one(self):
        self.make_dataset("e", n=2000, dim=64)
        self.write("old.npy", "previous content")
        # The file size limit makes the write fail half-way (EFBIG, SIGXFSZ ignored).
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        for out in ("old.npy", "fresh.npy", "fresh.h5"):
            before = self.files_in_dir()
            r = self.run_vstash("export", "--dataset", "e", "-o", out, preexec_fn=limit)
            self.assertNotEqual(r.returncode, 0, out)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(out.split(".")[0], r.stderr)
            self.assertEqual(self.files_in_dir(), before, f"{out}: stray files")
        self.assertEqual(read_text(self.path("old.npy")), "previous content")

    def test_failed_batch_and_checkpoint_load_write_nothing(self):
        self.make_dataset("e", n=10)
        before = self.files_in_dir()
        self.fails(2, "batch", "--dataset", "e", "--size", "4", "-o", "no/such/dir/b.npy", contains=["no/such/dir"])
        self.fails(4, "batch", "--dataset", "e", "--size", "4", "--offset", "100", "-o", "b.npy")
        self.fails(4, "checkpoint", "load", "ghost@1", "-o", "c.npy")
        self.assertEqual(self.files_in_dir(), before)


class OutputModes(CliTest):
    def test_every_command_json_is_parseable(self):
        self.make_dataset("j", n=10)
        np.save(self.path("p.npy"), np.ones(3, np.float32))
        cmds = [
            ("ingest", "j.npy", "--dataset", "j2"),
            ("batch", "--dataset", "j", "--size", "2", "-o", "jb.npy"),
            ("export", "--dataset", "j", "-o", "je.h5"),
            ("query", "--dataset", "j", "[1,2,3,4]", "-k", "2"),
            ("insert", "--dataset", "j3", "--id", "x", "--vector", "[1]"),
            ("update", "--dataset", "j3", "--id", "x", "--vector", "[2]"),
            ("get", "--dataset", "j3", "x"),
            ("delete", "--dataset", "j3", "--id", "x"),
            ("checkpoint", "save", "--model", "m", "--epoch", "1", "--params", "p.npy"),
            ("checkpoint", "load", "m@latest"),
            ("checkpoint", "list"),
            ("stats",),
            ("profiles", "list"),
            ("profiles", "show"),
            ("progress",),
        ]
        documented = documented_json_keys()
        for c in cmds:
            with self.subTest(cmd=c[0]):
                r = self.ok(*c, "--json")
                doc = json.loads(r.stdout)
                self.assertIsInstance(doc, dict, c)
                name = " ".join(c[:2]) if c[0] in ("checkpoint", "profiles") else c[0]
                name = "progress [show]" if name == "progress" else name
                self.assertIn(name, documented, "docs/cli.md has no row for " + name)
                self.assertLessEqual(set(doc), documented[name], f"{name}: keys missing from docs/cli.md")
                r2 = self.ok(*c[:1], "--json", *c[1:]) if c[0] in ("stats", "profiles", "progress") else None
                if r2:
                    json.loads(r2.stdout)

    def test_json_from_environment_and_flag_precedence(self):
        self.make_dataset("envA", n=4)
        self.make_dataset("envB", n=6)
        st = json.loads(self.ok("stats", env={"VSTASH_JSON": "1", "VSTASH_DATASET": "envA"}).stdout)
        self.assertEqual([d["name"] for d in st["datasets"]], ["envA"])
        st = json.loads(self.ok("stats", "--dataset", "envB", env={"VSTASH_JSON": "1", "VSTASH_DATASET": "envA"}).stdout)
        self.assertEqual([d["name"] for d in st["datasets"]], ["envB"])
        res = json.loads(self.ok("query", "[1,2,3,4]", env={"VSTASH_JSON": "true", "VSTASH_DATASET": "envA",
                                                             "VSTASH_K": "2", "VSTASH_QUERY_INCLUDE_VALUES": "1",
                                                             "VSTASH_FILTER": '{"group": "a"}'}).stdout)
        self.assertEqual(len(res["hits"]), 2)
        self.assertIn("values", res["hits"][0])
        self.assertTrue(all(h["metadata"]["group"] == "a" for h in res["hits"]))
        help_text = self.ok("query", "--help").stdout
        self.assertIn("VSTASH_QUERY_INCLUDE_VALUES", help_text)

    def test_a_command_reads_only_its_own_variables(self):
        # A malformed variable of another command (ingest's, query's, progress record's) no
        # longer fails this one (it did while every command was built: main.cpp builds only
        # the one that runs); the command's own and the global variables are still read.
        self.make_dataset("envC", n=4)
        others = {"VSTASH_INGEST_BATCH_SIZE": "x", "VSTASH_K": "x", "VSTASH_STEP": "x", "VSTASH_SHUFFLE": "x"}
        st = json.loads(self.ok("stats", env={**others, "VSTASH_JSON": "1", "VSTASH_DATASET": "envC"}).stdout)
        self.assertEqual([d["name"] for d in st["datasets"]], ["envC"])
        self.fails(2, "query", "[1,2,3,4]", "--dataset", "envC", env={"VSTASH_K": "x"}, contains=["-k"])
        self.fails(2, "stats", env={"VSTASH_JSON": "x"}, contains=["--json"])

    def test_quiet_silences_diagnostics(self):
        with h5py.File(self.path("ann.h5"), "w") as f:
            f.attrs["distance"] = "angular"
            f["train"] = np.ones((4, 3), np.float32)
            f["test"] = np.ones((1, 3), np.float32)
        r = self.ok("ingest", "ann.h5", "--dataset", "a1")
        self.assertIn("ann-benchmarks", r.stderr)
        r = self.ok("--quiet", "ingest", "ann.h5", "--dataset", "a2")
        self.assertEqual(r.stderr, "")
        self.assertIn("ingested 4 rows", r.stdout)
        r = self.ok("insert", "-q", "--dataset", "n1", "--id", "a", "--vector", "[1]")
        self.assertEqual(r.stderr, "")
        # Errors still show.
        self.fails(4, "-q", "get", "--dataset", "n1", "zz")

    def run_with_tty_stderr(self, *args):
        """Runs vstash with stderr on a pseudo-terminal; returns (code, stdout, stderr text)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([VSTASH, *args], cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                proc.kill()
                self.fail("no output from vstash within 60 s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        out = proc.stdout.read().decode()
        proc.stdout.close()
        return proc.wait(timeout=60), out, b"".join(chunks).decode(errors="replace")

    def test_progress_bar_only_on_a_terminal(self):
        np.save(self.path("p.npy"), np.ones((3000, 4), np.float32))
        code, out, err = self.run_with_tty_stderr("ingest", "p.npy", "--dataset", "p1", "--batch-size", "500")
        self.assertEqual(code, 0, err)
        self.assertIn("ingest [", err)
        self.assertIn("100.0%", err)
        self.assertIn("ingested 3000 rows", out)
        for flag in ("--no-progress", "--quiet", "--json"):
            code, out, err = self.run_with_tty_stderr("ingest", "p.npy", "--dataset", "p-" + flag[2:], flag)
            self.assertEqual(code, 0, err)
            self.assertNotIn("ingest [", err, flag)
        r = self.ok("ingest", "p.npy", "--dataset", "p2")  # stderr is a pipe
        self.assertNotIn("ingest [", r.stderr)
        self.assertNotIn("\r", r.stderr)


if __name__ == "__main__":
    unittest.main()
