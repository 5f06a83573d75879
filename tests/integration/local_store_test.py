# SPDX-License-Identifier: MIT
# The local store's own promises, through the built binary (issue 2, item 6):
#   - a kill -9 in the middle of an ingest leaves the store consistent (whole batches only),
#     and `ingest --resume` finishes the job with no duplicate and no gap;
#   - readers (batch, query, stats) keep working while one writer ingests;
#   - the store's file is never left half-written by a refused ingest.
# Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/local_store_test.py
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from clirun import wait_until  # this folder is on sys.path

VSTASH = os.environ.get("VSTASH_BIN", "vstash")


class Store:
    """A local store in a scratch directory, reached through its own profile file."""

    def __init__(self, root):
        self.root = root
        self.config = os.path.join(root, "vstash.yaml")
        with open(self.config, "w") as f:
            f.write("default: local\nprofiles:\n  local:\n    type: local\n"
                    f"    path: {root}/store/local.db\n")
        self.env = dict(os.environ, VSTASH_CONFIG=self.config, VSTASH_NO_PROGRESS="1")
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            self.env.pop(k, None)

    def run(self, *args, check=True):
        p = subprocess.run([VSTASH, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"vstash {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def popen(self, *args):
        return subprocess.Popen([VSTASH, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def rows(self, dataset):
        p = self.run("stats", "--json", check=False)
        if p.returncode == 4:  # no store yet: read commands never create one
            return 0
        if p.returncode != 0:
            raise AssertionError(f"vstash stats exited {p.returncode}: {p.stderr}")
        stats = json.loads(p.stdout)
        for d in stats["datasets"]:
            if d["name"] == dataset:
                return d["rows"]
        return 0

    def export(self, dataset, out):
        self.run("--dataset", dataset, "export", "-o", out)
        return np.load(out), np.load(out[:-4] + ".ids.npy", allow_pickle=False)


class LocalStoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-local-")
        self.store = Store(self.tmp.name)
        rng = np.random.default_rng(7)
        # Big enough that an ingest in 500-row transactions runs for a while.
        self.data = rng.standard_normal((200_000, 32)).astype(np.float32)
        self.path = os.path.join(self.tmp.name, "data.npy")
        np.save(self.path, self.data)

    def tearDown(self):
        self.tmp.cleanup()

    def test_kill9_mid_ingest_then_resume_has_no_duplicates_or_gaps(self):
        s = self.store
        # --no-index throughout: the ANN index build over 200k rows is local_index_test's subject.
        writer = s.popen("--dataset", "big", "ingest", self.path, "--batch-size", "500", "--no-index")
        try:
            wait_until(lambda: writer.poll() is not None or s.rows("big") >= 1000, 120,
                       "the first committed batches")
            self.assertIsNone(writer.poll(), "ingest finished before it could be killed: make the file bigger")
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.communicate()
        self.assertEqual(writer.returncode, -signal.SIGKILL)

        # Consistent: only whole batches were committed, and what is there is a prefix of the file.
        committed = s.rows("big")
        self.assertGreater(committed, 0)
        self.assertLess(committed, len(self.data))
        self.assertEqual(committed % 500, 0, "a half-written batch is visible after kill -9")
        data, ids = s.export("big", os.path.join(self.tmp.name, "partial.npy"))
        np.testing.assert_array_equal(data, self.data[:committed])

        # A plain re-run refuses (it would duplicate); --resume finishes the job.
        again = s.run("--dataset", "big", "ingest", self.path, "--no-index", check=False)
        self.assertEqual(again.returncode, 5, again.stderr)
        self.assertIn("--resume", again.stderr)
        s.run("--dataset", "big", "ingest", self.path, "--resume", "--no-index")

        data, ids = s.export("big", os.path.join(self.tmp.name, "full.npy"))
        self.assertEqual(len(ids), len(self.data))
        self.assertEqual(len(set(ids.tolist())), len(ids), "duplicate ids after --resume")
        np.testing.assert_array_equal(data, self.data)

    def test_readers_work_while_one_writer_ingests(self):
        s = self.store
        seed = os.path.join(self.tmp.name, "seed.npy")
        np.save(seed, self.data[:1000])
        s.run("--dataset", "small", "ingest", seed)
        query = os.path.join(self.tmp.name, "q.npy")
        np.save(query, self.data[:1])

        writer = s.popen("--dataset", "big", "ingest", self.path, "--batch-size", "500", "--no-index")
        reads = 0
        try:
            wait_until(lambda: writer.poll() is not None or s.rows("big") > 0, 120, "the writer's first batch")
            while writer.poll() is None and reads < 20:
                out = os.path.join(self.tmp.name, f"b{reads}.npy")
                s.run("--dataset", "small", "batch", "--size", "100", "--offset", str(reads * 10), "-o", out)
                np.testing.assert_array_equal(np.load(out), self.data[reads * 10:reads * 10 + 100])
                hits = s.run("--dataset", "small", "query", "--vector-file", query, "-k", "1", "--json")
                self.assertIn('"0"', hits.stdout)
                reads += 1
        finally:
            _, err = writer.communicate(timeout=600)
        self.assertEqual(writer.returncode, 0, err)
        self.assertGreater(reads, 0, "the writer finished before any reader ran: make the file bigger")
        self.assertEqual(s.rows("big"), len(self.data))

    def test_refused_ingest_changes_nothing(self):
        s = self.store
        seed = os.path.join(self.tmp.name, "seed.npy")
        np.save(seed, self.data[:100])
        s.run("--dataset", "d", "ingest", seed)
        before = s.run("stats", "--json").stdout
        bad = self.data[:300].copy()
        bad[250, 3] = np.nan  # in the third 100-row batch: the first two must not land either
        bad_path = os.path.join(self.tmp.name, "nan.npy")
        np.save(bad_path, bad)
        p = s.run("--dataset", "d2", "ingest", bad_path, "--batch-size", "100", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("nan.npy", p.stderr)
        self.assertEqual(json.loads(s.run("stats", "--json").stdout)["datasets"],
                         json.loads(before)["datasets"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
