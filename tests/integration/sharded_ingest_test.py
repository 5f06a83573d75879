#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`vstash ingest --rank R --world-size W` (issue 20 line 4) on one store, through the CLI:
  - W = 4 processes started at once into one dataset give exactly what one process gives:
    the exports of both datasets (samples, labels, ids, metadata files) are equal byte for
    byte, in the same order, and so are rows and next_index; no rank builds the index;
  - kill -9 of one rank once its own resume point has moved (polled, no sleeps), then
    `--resume` of that rank alone: no duplicate, no gap (the export equals a single ingest);
    a rank re-run without --resume is a conflict (exit 5);
  - flag checks: one of the two flags alone, rank out of range, --append with --rank (exit 2);
  - `copy --rank R --world-size 4`, four at once, gives a copy equal to its source.
The store is the profile VSTASH_SHARD_PROFILE in VSTASH_SHARD_CONFIG (both empty: a local
store in a temporary directory), VSTASH_SHARD_KILL_ROWS the kill test's rows (default 24000); CTest runs it once per store (tests/suites/sharded.cmake).
On Qdrant and Pinecone, whose dataset record has no atomic update, each rank keeps its
next_index and resume point in a record of its own (backends/common/writerparts.hpp); the same
checks hold there, and a later single-process change folds those records back.
A missing server fails the test (nothing is skipped)."""
import filecmp
import json
import os
import signal
import subprocess
import tempfile
import unittest
import uuid

import numpy as np
import yaml

from local_store_test import wait_until  # polls with a deadline

VSTASH = os.environ["VSTASH_BIN"]
CONFIG = os.environ.get("VSTASH_SHARD_CONFIG", "")
PROFILE = os.environ.get("VSTASH_SHARD_PROFILE", "")
WORLD = 4
# Rows of the kill test: enough that the killed rank's slice takes many commits (the Pinecone
# double, slow per request, needs fewer).
KILL_ROWS = int(os.environ.get("VSTASH_SHARD_KILL_ROWS", "24000"))


class ShardedIngestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="vstash-shard-")
        if CONFIG:
            with open(CONFIG) as f:
                profile = yaml.safe_load(f)["profiles"][PROFILE]
        else:
            profile = {"type": "local", "path": os.path.join(cls.tmp.name, "local.db")}
        cls.config = os.path.join(cls.tmp.name, "vstash.yaml")
        with open(cls.config, "w") as f:
            yaml.safe_dump({"default": "s", "profiles": {"s": profile}}, f)
        cls.env = dict(os.environ, VSTASH_CONFIG=cls.config, VSTASH_NO_PROGRESS="1")
        for key in ("VSTASH_PROFILE", "VSTASH_INGEST_RANK", "VSTASH_INGEST_WORLD_SIZE"):
            cls.env.pop(key, None)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_vstash(self, *args, code=0):
        r = subprocess.run([VSTASH, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if code is not None:
            self.assertEqual(r.returncode, code, f"vstash {' '.join(args)}: {r.stderr}{r.stdout}")
        return r

    def make_input(self, rows, dim, id_prefix="row"):
        """Data, labels, string ids and JSONL metadata files of `rows` rows; returns ingest args."""
        tag = uuid.uuid4().hex[:8]
        rng = np.random.default_rng(rows)
        np.save(self.path(f"x-{tag}.npy"), rng.standard_normal((rows, dim)).astype(np.float32))
        np.save(self.path(f"y-{tag}.npy"), rng.integers(0, 10, rows).astype(np.int64))
        np.save(self.path(f"ids-{tag}.npy"), np.array([f"{id_prefix}-{i:06d}-é" for i in range(rows)]))
        with open(self.path(f"m-{tag}.jsonl"), "w") as f:
            for i in range(rows):
                f.write(json.dumps({"i": i, "name": f"ñ{i}", "even": i % 2 == 0}) + "\n")
        return [self.path(f"x-{tag}.npy"), "--labels", self.path(f"y-{tag}.npy"), "--ids",
                self.path(f"ids-{tag}.npy"), "--metadata", self.path(f"m-{tag}.jsonl")]

    def start_rank(self, source, dataset, rank, *extra):
        return subprocess.Popen([VSTASH, "--dataset", dataset, "ingest", *source, "--rank", str(rank),
                                 "--world-size", str(WORLD), "--json", *extra],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run_ranks(self, source, dataset, *extra):
        procs = [self.start_rank(source, dataset, r, *extra) for r in range(WORLD)]
        outs = [p.communicate(timeout=600) for p in procs]
        for r, (p, (out, err)) in enumerate(zip(procs, outs)):
            self.assertEqual(p.returncode, 0, f"rank {r}: {err}{out}")
        return [json.loads(out) for out, _ in outs]

    def stats(self, dataset):
        r = self.run_vstash("stats", "--json", code=None)
        if r.returncode == 4:
            return None  # a store nothing was written to yet (no local file, no Pinecone index)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        return next((d for d in out["datasets"] if d["name"] == dataset), None)

    def assert_same_export(self, single, sharded):
        """The two datasets export to byte-identical files, and agree on rows and next_index."""
        files = {}
        for name in (single, sharded):
            d = self.path(f"out-{name}-{uuid.uuid4().hex[:8]}")
            os.makedirs(d)
            self.run_vstash("--dataset", name, "export", "-o", os.path.join(d, "out.npy"))
            files[name] = d
        listing = sorted(os.listdir(files[single]))
        self.assertEqual(listing, sorted(os.listdir(files[sharded])))
        self.assertIn("out.labels.npy", listing)
        self.assertIn("out.ids.npy", listing)
        self.assertGreaterEqual(len(listing), 4, listing)  # samples, labels, ids, metadata
        for f in listing:
            self.assertTrue(filecmp.cmp(os.path.join(files[single], f), os.path.join(files[sharded], f), shallow=False),
                            f"{f} differs between a single ingest and {WORLD} ranks")
        a, b = self.stats(single), self.stats(sharded)
        self.assertEqual((a["rows"], a["next_index"]), (b["rows"], b["next_index"]))
        # check agrees (the ranks' resume points are bookkeeping, not data)
        self.run_vstash("check", f"s:{single}", f"s:{sharded}")

    def single_ingest(self, source, rows):
        name = f"single-{uuid.uuid4().hex[:8]}"
        self.run_vstash("--dataset", name, "ingest", *source, "--batch-size", "64", "--no-index")
        self.assertEqual(self.stats(name)["next_index"], rows)
        return name

    def test_four_ranks_equal_one_process(self):
        rows = 1003  # not a multiple of 4: slices of 250, 251, 251, 251
        source = self.make_input(rows, 6)
        single = self.single_ingest(source, rows)
        sharded = f"sharded-{uuid.uuid4().hex[:8]}"
        results = self.run_ranks(source, sharded, "--batch-size", "64")
        self.assertEqual([(r["first_row"], r["end_row"]) for r in results],
                         [(0, 250), (250, 501), (501, 752), (752, 1003)])
        self.assertEqual(sum(r["rows"] for r in results), rows)
        self.assertTrue(all(r["index"] is None for r in results))
        self.assert_same_export(single, sharded)
        meta = self.stats(sharded)["metadata"]
        self.assertEqual(meta["ingest_world_size"], WORLD)
        # every rank's resume point survived the others' writes, at its slice end
        self.assertEqual([meta.get(f"ingest_watermark_rank_{r}") for r in range(WORLD)], [250, 501, 752, 1003])
        # one process appending afterwards (its dataset record change folds the ranks' records
        # back into the dataset's) keeps everything the ranks wrote
        extra = self.make_input(7, 6, id_prefix="extra")
        for name in (single, sharded):
            self.run_vstash("--dataset", name, "ingest", *extra, "--append", "--no-index")
        self.assert_same_export(single, sharded)
        self.assertEqual(self.stats(sharded)["next_index"], rows + 7)
        meta = self.stats(sharded)["metadata"]
        self.assertEqual([meta.get(f"ingest_watermark_rank_{r}") for r in range(WORLD)], [250, 501, 752, 1003])

    def test_four_copy_ranks_equal_the_source(self):
        rows = 1003
        single = self.single_ingest(self.make_input(rows, 5), rows)
        copied = f"copied-{uuid.uuid4().hex[:8]}"
        procs = [subprocess.Popen([VSTASH, "copy", f"s:{single}", f"s:{copied}", "--rank", str(r), "--world-size",
                                   str(WORLD), "--block-rows", "64", "--json"], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for r in range(WORLD)]
        outs = [p.communicate(timeout=600) for p in procs]
        for r, (p, (out, err)) in enumerate(zip(procs, outs)):
            self.assertEqual(p.returncode, 0, f"copy rank {r}: {err}{out}")
        results = [json.loads(out) for out, _ in outs]
        self.assertEqual([(r["first_row"], r["end_row"], r["rows"]) for r in results],
                         [(0, 250, 250), (250, 501, 251), (501, 752, 251), (752, 1003, 251)])
        self.assert_same_export(single, copied)
        again = self.run_vstash("copy", f"s:{single}", f"s:{copied}", "--rank", "2", "--world-size", str(WORLD), code=5)
        self.assertIn("already started: pass --resume", again.stderr)
        for flags, message in [(["--verify"], "--verify compares whole datasets"),
                               (["--replace"], "not with --replace"), (["--append"], "not with --append")]:
            r = self.run_vstash("copy", f"s:{single}", f"s:{copied}", "--rank", "0", "--world-size", "2", *flags,
                                code=2)
            self.assertIn(message, r.stderr)

    def watermark(self, dataset, rank):
        d = self.stats(dataset)
        return None if d is None else d["metadata"].get(f"ingest_watermark_rank_{rank}")

    def test_kill_one_rank_then_resume(self):
        rows = KILL_ROWS
        source = self.make_input(rows, 16)
        single = self.single_ingest(source, rows)
        sharded = f"killed-{uuid.uuid4().hex[:8]}"
        victim = 1
        begin, end = rows * victim // WORLD, rows * (victim + 1) // WORLD
        # Small blocks and one writer, so that the victim's slice takes many commits.
        procs = {r: self.start_rank(source, sharded, r, "--batch-size", "16", "--writers", "1") for r in range(WORLD)}
        wait_until(lambda: (self.watermark(sharded, victim) or 0) > begin or procs[victim].poll() is not None, 120,
                   f"rank {victim}'s resume point to move")
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].communicate(timeout=60)
        self.assertEqual(procs[victim].returncode, -signal.SIGKILL, "the rank finished before the kill")
        for r, p in procs.items():
            if r != victim:
                out, err = p.communicate(timeout=600)
                self.assertEqual(p.returncode, 0, f"rank {r}: {err}{out}")
        mark = self.watermark(sharded, victim)
        self.assertIsNotNone(mark, "the victim's resume point was lost")
        self.assertLess(mark, end, "the victim's resume point already at its slice end")
        again = self.run_vstash("--dataset", sharded, "ingest", *source, "--rank", str(victim), "--world-size",
                                str(WORLD), "--batch-size", "16", code=5)
        self.assertIn("already started: pass --resume", again.stderr)
        self.assertEqual(len(again.stderr.strip().splitlines()), 1, again.stderr)
        r = json.loads(self.run_vstash("--dataset", sharded, "ingest", *source, "--rank", str(victim),
                                       "--world-size", str(WORLD), "--batch-size", "16", "--resume", "--json").stdout)
        self.assertEqual(r["skipped_rows"], mark - begin)
        self.assertEqual(r["rows"], end - mark)
        self.assert_same_export(single, sharded)

    def test_flag_checks(self):
        source = self.make_input(10, 4)
        bad = [(["--rank", "0"], "--rank: give --world-size too"),
               (["--world-size", "2"], "--world-size: give --rank too"),
               (["--rank", "2", "--world-size", "2"], "--rank: must be between 0 and 1, got 2"),
               (["--rank", "-1", "--world-size", "2"], "--rank: must be between 0 and 1, got -1"),
               (["--rank", "0", "--world-size", "0"], "--world-size: must be between 1 and"),
               (["--rank", "0", "--world-size", "2", "--append"], "--append: not with --rank")]
        for flags, message in bad:
            r = self.run_vstash("--dataset", "flags", "ingest", *source, *flags, code=2)
            self.assertIn(message, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIsNone(self.stats("flags"))


if __name__ == "__main__":
    unittest.main()
