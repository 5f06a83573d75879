#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`vstash copy` and `vstash check` between every ordered pair of local, pgvector, Redis and the
Qdrant double (issue 18), through the CLI, with the servers of tests/servers/ (their profiles in
$VSTASH_TEST_STATE/{pgvector,redis,qdrant}.yaml, merged here into one file with a local store):
  - every pair: float16 2-D rows, int64 labels, nested unicode metadata and unicode ids copy bit
    for bit (export of the destination equals the source's file), index order kept, dataset
    metadata copied, `check` equal; on one pair per destination also float32 and uint8 rows;
  - `check` finds a changed, a missing and an extra row (exit 1, the ids named);
  - kill -9 in the middle of a copy (once the resume point has moved, polled, no sleeps), then
    `--resume`: no duplicate, no gap, for local -> pgvector and pgvector -> Redis; Ctrl-C
    (exit 130) then `--resume` for local -> Redis;
  - `--dry-run` writes nothing; a non-empty or incompatible destination is exit 5;
    --append/--replace; malformed addresses exit 2; checkpoints with their latest pointer.
AllPairs (CTest copy_check_all_pairs) is the nightly-sized case: all 25 ordered pairs of the five
stores, the Pinecone double included, each copy verified and checked.
A missing server fails the test (nothing is skipped)."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest
import uuid

import numpy as np
import yaml

from clirun import wait_until  # this folder is on sys.path

VSTASH = os.environ["VSTASH_BIN"]
STATE = os.environ["VSTASH_TEST_STATE"]
STORES = ["local", "pg", "redis", "qdrant"]


class CopyTest(unittest.TestCase):
    with_pinecone = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="vstash-copy-")
        profiles = {"local": {"type": "local", "path": os.path.join(cls.tmp.name, "local.db")}}
        servers = [("pg", "pgvector.yaml"), ("redis", "redis.yaml"), ("qdrant", "qdrant.yaml")]
        if cls.with_pinecone:
            servers.append(("pinecone", "pinecone.yaml"))
        for name, file in servers:
            with open(os.path.join(STATE, file)) as f:
                profiles[name] = yaml.safe_load(f)["profiles"][name]
        cls.config = os.path.join(cls.tmp.name, "vstash.yaml")
        with open(cls.config, "w") as f:
            yaml.safe_dump({"default": "local", "profiles": profiles}, f)
        cls.env = dict(os.environ, VSTASH_CONFIG=cls.config, VSTASH_NO_PROGRESS="1")
        cls.env.pop("VSTASH_PROFILE", None)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_vstash(self, *args, code=0):
        r = subprocess.run([VSTASH, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if code is not None:
            self.assertEqual(r.returncode, code, f"vstash {' '.join(args)}: {r.stderr}{r.stdout}")
        return r

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def name(self, tag):
        return f"cp-{tag}-{uuid.uuid4().hex[:8]}"

    def make_source(self, store, n=300, dtype="float16", shape=(4, 3), labels=True, metadata=True):
        """Ingests a dataset into store; returns (dataset, data, ids, labels, metadata rows)."""
        rng = np.random.default_rng(abs(hash((store, n, dtype))) % 2**32)
        if np.dtype(dtype).kind == "f":
            data = rng.standard_normal((n, *shape)).astype(dtype)
        else:
            data = rng.integers(0, 255, (n, *shape)).astype(dtype)
        ids = np.array([f"ü-{i}-δ" if i % 3 else str(uuid.UUID(int=i)) for i in range(n)])
        tag = uuid.uuid4().hex[:8]
        args = []
        np.save(self.path(f"{tag}.npy"), data)
        np.save(self.path(f"{tag}.ids.npy"), ids)
        args += ["--ids", self.path(f"{tag}.ids.npy")]
        lab = None
        if labels:
            lab = rng.integers(-2**40, 2**40, n).astype("int64")
            np.save(self.path(f"{tag}.labels.npy"), lab)
            args += ["--labels", self.path(f"{tag}.labels.npy")]
        meta = None
        if metadata:
            meta = [{"n": i, "f": i / 7, "nested": {"k": ["ä", i, {"deep": True}]}, "s": "日本"} for i in range(n)]
            with open(self.path(f"{tag}.jsonl"), "w") as f:
                f.writelines(json.dumps(m) + "\n" for m in meta)
            args += ["--metadata", self.path(f"{tag}.jsonl")]
        dataset = self.name(store)
        self.run_vstash("--profile", store, "--dataset", dataset, "ingest", self.path(f"{tag}.npy"), *args)
        return dataset, data, ids, lab, meta

    def export(self, store, dataset):
        out = self.path(f"exp-{uuid.uuid4().hex[:8]}.npy")
        self.run_vstash("--profile", store, "--dataset", dataset, "export", "-o", out)
        ids = np.load(out[:-4] + ".ids.npy") if os.path.exists(out[:-4] + ".ids.npy") else None
        labels = np.load(out[:-4] + ".labels.npy") if os.path.exists(out[:-4] + ".labels.npy") else None
        meta = None
        if os.path.exists(out[:-4] + ".metadata.jsonl"):
            with open(out[:-4] + ".metadata.jsonl") as f:
                meta = [json.loads(line) for line in f]
        return np.load(out), ids, labels, meta

    def dataset_stats(self, store, dataset):
        st = json.loads(self.run_vstash("--profile", store, "stats", "--json").stdout)
        found = [d for d in st["datasets"] if d["name"] == dataset]
        return found[0] if found else None

    def assert_same_rows(self, store, dataset, data, ids, labels, meta):
        got, got_ids, got_labels, got_meta = self.export(store, dataset)
        self.assertEqual(got.dtype, data.dtype)
        self.assertEqual(got.shape, data.shape)
        self.assertEqual(got.tobytes(), data.tobytes(), f"{store}:{dataset}: samples differ")
        self.assertEqual(list(got_ids), list(ids), f"{store}:{dataset}: ids or their order differ")
        if labels is not None:
            self.assertEqual(got_labels.tobytes(), labels.tobytes())
        if meta is not None:
            self.assertEqual(got_meta, meta)

    # --- every ordered pair -------------------------------------------------------------
    def test_every_ordered_pair_copies_bit_for_bit_and_checks_equal(self):
        sources = {s: self.make_source(s) for s in STORES}
        for a in STORES:
            for b in STORES:
                if a == b:
                    continue
                with self.subTest(src=a, dst=b):
                    dataset, data, ids, labels, meta = sources[a]
                    dst = self.name(f"{a}-{b}")
                    r = self.run_vstash("copy", f"{a}:{dataset}", f"{b}:{dst}", "--verify", "--json")
                    summary = json.loads(r.stdout)
                    self.assertEqual(summary["rows"], len(ids))
                    self.assertTrue(summary["verified"])
                    self.assert_same_rows(b, dst, data, ids, labels, meta)
                    self.run_vstash("check", f"{a}:{dataset}", f"{b}:{dst}")
                    self.run_vstash("check", f"{b}:{dst}", f"{a}:{dataset}", "--sample", "40", "--seed", "3")
                    md = self.dataset_stats(b, dst)["metadata"]
                    self.assertEqual(md.get("copy_source"), f"{a}:{dataset}")

    def test_other_dtypes_to_every_store(self):
        for dtype, shape in (("float32", (16,)), ("uint8", (2, 5)), ("float64", (3,))):
            src, data, ids, labels, meta = self.make_source("local", n=120, dtype=dtype, shape=shape, labels=False,
                                                            metadata=False)
            for b in STORES[1:]:
                with self.subTest(dtype=dtype, dst=b):
                    dst = self.name(dtype)
                    self.run_vstash("copy", f"local:{src}", f"{b}:{dst}")
                    self.assert_same_rows(b, dst, data, ids, None, None)
                    self.run_vstash("check", f"local:{src}", f"{b}:{dst}")

    # --- check finds differences --------------------------------------------------------
    def test_check_finds_changed_missing_and_extra_rows(self):
        for b in ("pg", "redis", "qdrant"):
            with self.subTest(dst=b):
                src, data, ids, labels, meta = self.make_source("local", n=50)
                dst = self.name("diff")
                self.run_vstash("copy", f"local:{src}", f"{b}:{dst}")
                self.run_vstash("--profile", b, "--dataset", dst, "update", "--id", str(ids[7]), "--metadata",
                                json.dumps({"s": "changed"}))
                r = self.run_vstash("check", f"local:{src}", f"{b}:{dst}", code=1)
                self.assertIn("differing: 1", r.stdout)
                self.assertIn(json.dumps(str(ids[7]), ensure_ascii=False), r.stdout)
                self.assertIn("differ", r.stderr)
                self.run_vstash("--profile", b, "--dataset", dst, "delete", "--id", str(ids[3]), "--yes")
                self.run_vstash("--profile", b, "--dataset", dst, "insert", "--id", "intruder", "--vector",
                                json.dumps([0.5] * 12), code=None)
                doc = json.loads(self.run_vstash("check", f"local:{src}", f"{b}:{dst}", "--json", code=1).stdout)
                self.assertFalse(doc["equal"])
                self.assertEqual(doc["missing"]["first"], [str(ids[3])])
                self.assertEqual(doc["differing"]["count"], 1)
                # check by sample sees the missing row when it draws it (a sample of all rows does)
                doc = json.loads(self.run_vstash("check", f"local:{src}", f"{b}:{dst}", "--json", "--sample", "50",
                                                 code=1).stdout)
                self.assertEqual(doc["missing"]["count"], 1)

    def test_check_finds_an_extra_row(self):
        src, data, ids, labels, meta = self.make_source("local", n=30, labels=False, metadata=False)
        dst = self.name("extra")
        self.run_vstash("copy", f"local:{src}", f"redis:{dst}")
        self.run_vstash("--profile", "redis", "--dataset", dst, "insert", "--id", "more",
                        "--vector", json.dumps([0.25] * 12))
        doc = json.loads(self.run_vstash("check", f"local:{src}", f"redis:{dst}", "--json", code=1).stdout)
        self.assertEqual(doc["extra"]["first"], ["more"])
        self.assertEqual((doc["missing"]["count"], doc["differing"]["count"]), (0, 0))

    # --- resume after kill -9 -----------------------------------------------------------
    def kill_mid_copy_then_resume(self, a, b, sig=signal.SIGKILL):
        n = 120000
        data = np.random.default_rng(5).standard_normal((n, 32)).astype("float32")
        np.save(self.path("big.npy"), data)
        src = self.name("big")
        self.run_vstash("--profile", a, "--dataset", src, "ingest", self.path("big.npy"), "--no-index")
        dst = self.name("resumed")
        copier = subprocess.Popen([VSTASH, "copy", f"{a}:{src}", f"{b}:{dst}", "--block-rows", "500"], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def moved():
            if copier.poll() is not None:
                return True
            st = self.dataset_stats(b, dst)
            return st is not None and st["metadata"].get("ingest_watermark", 0) >= 2000

        wait_until(moved, 120, "the copy's resume point to move")
        self.assertIsNone(copier.poll(), "the copy finished before it could be killed: make it larger")
        copier.send_signal(sig)
        _, err = copier.communicate()
        if sig == signal.SIGINT:  # Ctrl-C: the blocks in flight finish or roll back, exit 130
            self.assertEqual(copier.returncode, 130, err)
        partial = self.dataset_stats(b, dst)
        self.assertLess(partial["metadata"]["ingest_watermark"], n)
        self.run_vstash("copy", f"{a}:{src}", f"{b}:{dst}", code=5)  # not without --resume
        summary = json.loads(self.run_vstash("copy", f"{a}:{src}", f"{b}:{dst}", "--resume", "--json").stdout)
        self.assertGreater(summary["skipped"], 0)
        self.assertEqual(summary["skipped"] + summary["rows"], n)
        self.assertEqual(self.dataset_stats(b, dst)["rows"], n)
        self.run_vstash("check", f"{a}:{src}", f"{b}:{dst}")

    def test_kill9_mid_copy_then_resume_local_to_pgvector(self):
        self.kill_mid_copy_then_resume("local", "pg")

    def test_kill9_mid_copy_then_resume_pgvector_to_redis(self):
        self.kill_mid_copy_then_resume("pg", "redis")

    def test_ctrl_c_mid_copy_exits_130_then_resume_local_to_redis(self):
        self.kill_mid_copy_then_resume("local", "redis", signal.SIGINT)

    # --- destinations that exist, dry run, addresses -------------------------------------
    def test_existing_destination_conflicts_append_and_replace(self):
        src, data, ids, labels, meta = self.make_source("local", n=20)
        dst = self.name("exists")
        self.run_vstash("copy", src, f"pg:{dst}")
        r = self.run_vstash("copy", src, f"pg:{dst}", code=5)
        for flag in ("--append", "--replace", "--resume"):
            self.assertIn(flag, r.stderr)
        other, *_ = self.make_source("local", n=20, dtype="float32", shape=(8,))
        r = self.run_vstash("copy", other, f"pg:{dst}", "--append", code=5)
        self.assertIn("float16", r.stderr)
        r = self.run_vstash("copy", f"local:{other}", f"pg:{dst}", "--replace")
        self.assertEqual(self.dataset_stats("pg", dst)["dtype"], "float32")
        self.run_vstash("check", other, f"pg:{dst}")
        self.run_vstash("copy", other, f"pg:{dst}", "--append")
        st = self.dataset_stats("pg", dst)
        self.assertEqual(st["rows"], 20)  # the same ids again: upserted in place
        third = self.name("third")
        self.run_vstash("copy", other, f"redis:{third}")
        self.run_vstash("check", f"pg:{dst}", f"redis:{third}")  # indices moved by --append, order kept

    def test_dry_run_writes_nothing(self):
        src, *_ = self.make_source("local", n=25)
        for b in ("pg", "redis", "qdrant"):
            dst = self.name("dry")
            doc = json.loads(self.run_vstash("copy", src, f"{b}:{dst}", "--dry-run", "--json").stdout)
            self.assertTrue(doc["dry_run"])
            self.assertEqual(doc["rows"], 25)
            self.assertIsNone(self.dataset_stats(b, dst))

    def test_a_destination_that_cannot_hold_a_row_is_refused_naming_it(self):
        data = np.ones((3, 4), dtype="float32")
        np.save(self.path("uuid.npy"), data)
        np.save(self.path("uuid.ids.npy"), np.array(["a", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "c"]))
        src = self.name("uuid")
        self.run_vstash("--dataset", src, "ingest", self.path("uuid.npy"), "--ids", self.path("uuid.ids.npy"))
        dst = self.name("uuid")
        r = self.run_vstash("copy", src, f"qdrant:{dst}", "--dry-run", code=2)
        self.assertIn("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", r.stderr)
        self.assertIn("lower case", r.stderr)
        self.run_vstash("copy", src, f"qdrant:{dst}", code=2)
        self.run_vstash("copy", src, f"pg:{dst}")  # pgvector keeps the id as it is

        # metadata PostgreSQL cannot hold: refused, or copied without it under --allow-lossy
        with open(self.path("nul.jsonl"), "w") as f:
            f.write('{"a": 1}\n{"s": "x\\u0000y"}\n{"a": 3}\n')
        src = self.name("nul")
        self.run_vstash("--dataset", src, "ingest", self.path("uuid.npy"), "--metadata", self.path("nul.jsonl"))
        dst = self.name("nul")
        r = self.run_vstash("copy", src, f"pg:{dst}", code=2)
        self.assertIn('row "1"', r.stderr)
        self.assertIn("--allow-lossy metadata", r.stderr)
        doc = json.loads(self.run_vstash("copy", src, f"pg:{dst}", "--replace", "--allow-lossy", "metadata",
                                         "--json").stdout)
        self.assertEqual((doc["rows"], doc["lossy_rows"]), (3, 1))
        r = self.run_vstash("check", src, f"pg:{dst}", code=1)
        self.assertIn("differing: 1", r.stdout)

    def test_malformed_addresses_and_flags_are_usage_errors(self):
        for args in (("copy", "bad name:x", "pg:y"), ("copy", "local:", "pg:y"), ("check", "x", ":"),
                     ("copy", "a", "b", "--append", "--replace"), ("copy", "a", "b", "--allow-lossy", "dtype"),
                     ("copy", "local:same", "same")):
            with self.subTest(args=args):
                r = self.run_vstash(*args, code=2)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.run_vstash("copy", "nope:x", "pg:y", code=4)
        self.run_vstash("copy", "local:missing-dataset", "pg:y", code=4)

    def test_checkpoints_copy_with_latest_pointer(self):
        model = "m" + uuid.uuid4().hex[:8]
        np.save(self.path("p.npy"), np.arange(6, dtype="float32").reshape(2, 3))
        for epoch in (1, 2, 5):
            self.run_vstash("checkpoint", "save", "--model", model, "--epoch", str(epoch), "--params",
                            self.path("p.npy"), "--metric", f"loss={1 / epoch}")
        for b in ("pg", "redis", "qdrant"):
            with self.subTest(dst=b):
                doc = json.loads(self.run_vstash("copy", "--checkpoints", model, "local", b, "--json").stdout)
                self.assertEqual(doc["checkpoints"], [f"{model}@1", f"{model}@2", f"{model}@5"])
                self.run_vstash("copy", "--checkpoints", model, "local", b, code=5)
                doc = json.loads(self.run_vstash("copy", "--checkpoints", model, "local", b, "--resume",
                                                 "--json").stdout)
                self.assertEqual((doc["checkpoints"], doc["skipped"]), ([], 3))
                loaded = json.loads(self.run_vstash("--profile", b, "checkpoint", "load", f"{model}@latest", "-o",
                                                    self.path(f"back-{b}.npy"), "--json").stdout)
                self.assertEqual(loaded["epoch"], 5)
                self.assertAlmostEqual(loaded["metrics"]["loss"], 0.2)
                self.assertEqual(np.load(self.path(f"back-{b}.npy")).tobytes(),
                                 np.arange(6, dtype="float32").reshape(2, 3).tobytes())

    def test_json_keys_are_documented(self):
        src = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        documented = {}
        with open(os.path.join(src, "docs", "cli.md")) as f:
            for line in f:
                m = re.match(r"^\| `([^`]+)` \| (.*) \|$", line.rstrip("\n"))
                if m:
                    documented[m.group(1)] = set(re.findall(r"`([a-z_]+)`", re.sub(r"\[[^\]]*\]", "", m.group(2))))
        src_ds, *_ = self.make_source("local", n=5)
        model = "j" + uuid.uuid4().hex[:8]
        np.save(self.path("j.npy"), np.zeros(3, dtype="float32"))
        self.run_vstash("checkpoint", "save", "--model", model, "--epoch", "1", "--params", self.path("j.npy"))
        runs = {"copy": [("copy", src_ds, f"redis:{self.name('j')}", "--verify"), ("copy", src_ds, "x", "--dry-run")],
                "copy --checkpoints": [("copy", "--checkpoints", model, "local", "redis")],
                "check": [("check", src_ds, src_ds + "-none", "--sample", "3")]}
        self.run_vstash("copy", src_ds, src_ds + "-none")
        for name, commands in runs.items():
            for c in commands:
                doc = json.loads(self.run_vstash(*c, "--json").stdout)
                self.assertLessEqual(set(doc), documented[name], f"{name}: keys missing from docs/cli.md")


class AllPairs(CopyTest):
    """All 25 ordered pairs of the five stores (a store to itself: another dataset)."""
    with_pinecone = True

    def test_all_25_pairs(self):
        stores = STORES + ["pinecone"]
        sources = {s: self.make_source(s, n=60) for s in stores}
        for a in stores:
            for b in stores:
                with self.subTest(src=a, dst=b):
                    dataset, data, ids, labels, meta = sources[a]
                    dst = self.name(f"{a}-{b}")
                    self.run_vstash("copy", f"{a}:{dataset}", f"{b}:{dst}", "--verify")
                    self.assert_same_rows(b, dst, data, ids, labels, meta)
                    self.run_vstash("check", f"{b}:{dst}", f"{a}:{dataset}")


def load_tests(loader, tests, pattern):
    """CopyTest by default; `copy_test.py AllPairs` runs the nightly-sized case."""
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(CopyTest))
    return suite


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:])
