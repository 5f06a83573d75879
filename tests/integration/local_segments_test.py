# SPDX-License-Identifier: MIT
# The local store's segment files (layout 2) through the built binary:
#   - upserts, deletes and compactions (explicit and automatic) under kill -9, with a reader
#     in another process all the while: it never sees a torn or half-committed row, and the
#     end state has every row once, at its last version;
#   - two writers on one dataset take turns;
#   - a layout 1 store (made here by SQL with the old schema) is refused by a read-only
#     command with a one-line hint, and migrated by the first read-write one.
# Every row's vector encodes its id number and version: v = [id, version, id, version, ...],
# so a reader can check each row it gets on its own.
# Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/local_segments_test.py
import glob
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import threading
import unittest

import numpy as np

from local_store_test import Store, wait_until

DIM = 16


def rows_of(ids, version):
    x = np.empty((len(ids), DIM), np.float32)
    x[:, 0::2] = np.asarray(ids, np.float32)[:, None]
    x[:, 1::2] = version
    return x


def check_rows(test, x, versions):
    """Every row whole: one id number, one version, the version one that was written."""
    ids = x[:, 0]
    test.assertTrue(np.all(x[:, 0::2] == ids[:, None]), "a torn row (id part)")
    vs = x[:, 1]
    test.assertTrue(np.all(x[:, 1::2] == vs[:, None]), "a torn row (version part)")
    test.assertTrue(set(vs.astype(int).tolist()) <= versions, f"unknown versions {set(vs.tolist()) - versions}")


class Reader(threading.Thread):
    """Reads the dataset in a loop (shuffled batch, query, stats) until stopped; records failures."""

    def __init__(self, test, store, dataset, versions):
        super().__init__(daemon=True)
        self.test, self.store, self.dataset, self.versions = test, store, dataset, versions
        self.stop = threading.Event()
        self.reads = 0
        self.error = None

    def run(self):
        out = os.path.join(self.store.root, "reader.npy")
        q = os.path.join(self.store.root, "reader_q.npy")
        np.save(q, rows_of([3], 0))
        try:
            while not self.stop.is_set():
                p = self.store.run("--dataset", self.dataset, "batch", "--size", "100000", "--shuffle",
                                   "--seed", str(self.reads), "-o", out, check=False)
                if p.returncode == 3:  # the writer held the lock too long: retryable
                    continue
                if p.returncode != 0:
                    raise AssertionError(f"batch exited {p.returncode}: {p.stderr}")
                x = np.load(out)
                check_rows(self.test, x, self.versions)
                self.test.assertEqual(len(set(x[:, 0].tolist())), len(x), "a row twice in one snapshot")
                self.store.run("--dataset", self.dataset, "query", "--vector-file", q, "-k", "5", "--json")
                self.reads += 1
        except BaseException as e:  # reported by the test thread
            self.error = e


class LocalSegmentsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-segments-")
        self.store = Store(self.tmp.name)
        self.n = 20000
        self.ids = np.array([f"r{i}" for i in range(self.n)])
        self.ids_path = os.path.join(self.tmp.name, "ids.npy")
        np.save(self.ids_path, self.ids)

    def tearDown(self):
        self.tmp.cleanup()

    def version_file(self, v, deleted=()):
        """Rows of version v for every id not deleted; returns (data path, ids path)."""
        keep = [i for i in range(self.n) if f"r{i}" not in deleted]
        path = os.path.join(self.tmp.name, f"v{v}.npy")
        ids = os.path.join(self.tmp.name, f"v{v}_ids.npy")
        np.save(path, rows_of(keep, v))
        np.save(ids, self.ids[keep])
        return path, ids

    def export(self, dataset):
        return self.store.export(dataset, os.path.join(self.tmp.name, "export.npy"))

    def extra(self, dataset):
        stats = json.loads(self.store.run("stats", "--json").stdout)
        return next(d["extra"] for d in stats["datasets"] if d["name"] == dataset)

    def segment_files(self):
        return sorted(os.path.basename(f) for f in glob.glob(os.path.join(self.tmp.name, "store", "*.segments", "*.rows")))

    def test_upserts_deletes_compaction_under_kill9_with_a_reader(self):
        s = self.store
        s.run("--dataset", "d", "ingest", self.version_file(0)[0], "--ids", self.ids_path)
        versions = {0}
        reader = Reader(self, s, "d", versions)
        reader.start()
        deleted = set()
        killed_at = []
        try:
            for v in range(1, 6):
                versions.add(v)
                path, ids = self.version_file(v, deleted)
                # An upsert of every live row (each to a fresh slot), killed part way through.
                start = self.extra("d")["version"]
                w = s.popen("--dataset", "d", "ingest", path, "--ids", ids, "--append", "--batch-size", "500")
                # Killed after a different number of committed blocks each round.
                wait_until(lambda: w.poll() is not None or self.extra("d")["version"] >= start + 4 * v, 120,
                           "committed blocks")
                w.send_signal(signal.SIGKILL)
                w.communicate()
                self.assertEqual(w.returncode, -signal.SIGKILL, "the upsert finished before the kill")
                killed_at.append(self.extra("d")["version"] - start)
                # Deletes and an explicit compaction between the kills.
                gone = [f"r{i}" for i in range(v * 100, v * 100 + 50)]
                s.run("--dataset", "d", "delete", "--ids", ",".join(gone), "--ignore-missing", "--yes")
                deleted.update(gone)
                if v % 2 == 0:
                    s.run("--dataset", "d", "compact")
                self.assertEqual(s.rows("d"), self.n - len(deleted), f"round {v}, rows before it {start}")
                self.assertIsNone(reader.error, reader.error)
            # Finally one whole upsert: every remaining row at the last version.
            keep = [i for i in range(self.n) if f"r{i}" not in deleted]
            versions.add(9)
            path, ids = self.version_file(9, deleted)
            s.run("--dataset", "d", "ingest", path, "--ids", ids, "--append")
        finally:
            reader.stop.set()
            reader.join(timeout=120)
        if reader.error:
            raise reader.error
        self.assertGreater(reader.reads, 0)
        # The kills land at more than one point (a slow machine, or a sanitized build, can let the
        # writer finish its blocks before the poller sees the later thresholds).
        self.assertGreater(len(set(killed_at)), 1, f"kills after {killed_at} committed blocks")
        data, ids = self.export("d")
        self.assertEqual(sorted(ids.tolist()), sorted(self.ids[keep].tolist()))
        check_rows(self, data, {9})
        np.testing.assert_array_equal(data[:, 0], np.array([int(i[1:]) for i in ids], np.float32))
        # Compaction left one segment file; what the kills left behind was swept.
        s.run("--dataset", "d", "compact")
        self.assertEqual(len(self.segment_files()), 1, self.segment_files())

    def test_automatic_compaction_and_sweep_of_orphan_files(self):
        s = self.store
        path, ids = self.version_file(0)
        s.run("--dataset", "d", "ingest", path, "--ids", ids)
        seg = os.path.dirname(glob.glob(os.path.join(self.tmp.name, "store", "*.segments", "*.rows"))[0])
        # What a crash leaves: a next generation never committed, and a replaced one never unlinked.
        for orphan in ("1-2.rows", "1-0.rows", "99-1.rows"):
            with open(os.path.join(seg, orphan), "wb") as f:
                f.write(b"x" * 64)
        self.assertEqual(self.extra("d")["segment_generation"], 1)
        path, ids = self.version_file(1)
        s.run("--dataset", "d", "ingest", path, "--ids", ids, "--append", "--batch-size", "5000")
        self.assertEqual(self.segment_files(), ["1-1.rows"], "orphans not swept by the next writer")
        self.assertEqual(self.extra("d")["segment_slots"], 2 * self.n)  # exactly half dead: not yet
        path, ids = self.version_file(2)
        s.run("--dataset", "d", "ingest", path, "--ids", ids, "--append", "--batch-size", "5000")
        extra = self.extra("d")
        self.assertEqual(extra["segment_generation"], 2, "no automatic compaction past half dead")
        self.assertLessEqual(extra["segment_slots"], 2 * self.n)
        self.assertEqual(self.segment_files(), ["1-2.rows"])
        data, got = self.export("d")
        self.assertEqual(sorted(got.tolist()), sorted(self.ids.tolist()))
        check_rows(self, data, {2})

    def test_two_writers_on_one_dataset_take_turns(self):
        s = self.store
        half = self.n // 2
        np.save(os.path.join(self.tmp.name, "a_ids.npy"), self.ids[:half])
        np.save(os.path.join(self.tmp.name, "a.npy"), rows_of(range(half), 1))
        np.save(os.path.join(self.tmp.name, "b_ids.npy"), self.ids[half:])
        np.save(os.path.join(self.tmp.name, "b.npy"), rows_of(range(half, self.n), 2))
        s.run("--dataset", "d", "ingest", self.version_file(0)[0], "--ids", self.ids_path)
        writers = [s.popen("--dataset", "d", "ingest", os.path.join(self.tmp.name, f"{w}.npy"), "--ids",
                           os.path.join(self.tmp.name, f"{w}_ids.npy"), "--append", "--batch-size", "200")
                   for w in ("a", "b")]
        # Both append at the same next index: the blocks of one that meet an index the other
        # took are refused with one line (exit 5); nothing else may go wrong.
        codes = []
        for w in writers:
            _, err = w.communicate(timeout=600)
            codes.append(w.returncode)
            self.assertIn(w.returncode, (0, 5), err)
            if w.returncode == 5:
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn("is held by row", err)
        self.assertIn(0, codes)
        data, ids = self.export("d")
        self.assertEqual(sorted(ids.tolist()), sorted(self.ids.tolist()))
        check_rows(self, data, {0, 1, 2})
        np.testing.assert_array_equal(data[:, 0], np.array([int(i[1:]) for i in ids], np.float32))
        # Once they are done, a writer of each part in turn gets everything in.
        for w in ("a", "b"):
            s.run("--dataset", "d", "ingest", os.path.join(self.tmp.name, f"{w}.npy"), "--ids",
                  os.path.join(self.tmp.name, f"{w}_ids.npy"), "--append")
        data, ids = self.export("d")
        self.assertEqual(len(ids), self.n)
        check_rows(self, data, {1, 2})
        v = dict(zip(ids.tolist(), data[:, 1].tolist()))
        self.assertTrue(all(v[f"r{i}"] == (1 if i < half else 2) for i in range(self.n)))

    def test_layout1_store_is_refused_read_only_and_migrated_read_write(self):
        s = self.store
        os.makedirs(os.path.join(self.tmp.name, "store"))
        db = os.path.join(self.tmp.name, "store", "local.db")
        x = rows_of(range(300), 4)
        labels = np.arange(300, dtype=np.int64) % 7
        make_layout1(db, x, labels)
        p = s.run("--dataset", "old", "batch", "--size", "10", "-o", os.path.join(self.tmp.name, "b.npy"),
                  check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("layout version 1 must be migrated", p.stderr)
        self.assertIn("vstash compact", p.stderr)
        p = s.run("--dataset", "old", "compact")
        self.assertIn("migrating local store layout 1 -> 2 (299 rows)", p.stderr)
        data, ids = self.export("old")
        np.testing.assert_array_equal(data, np.delete(x, 5, axis=0))
        self.assertEqual(ids.tolist(), [f"r{i}" for i in range(300) if i != 5])
        out = os.path.join(self.tmp.name, "b.npy")
        s.run("--dataset", "old", "batch", "--size", "10", "--offset", "5", "-o", out)
        np.testing.assert_array_equal(np.load(out), np.delete(x, 5, axis=0)[5:15])
        # The labels went along, and the metadata stayed in SQLite.
        got = s.run("--dataset", "old", "get", "r7", "--json").stdout
        self.assertIn('"k": 7', got.replace('"k":7', '"k": 7'))
        self.assertEqual(s.run("--dataset", "old", "compact").stderr, "")


def make_layout1(db, x, labels):
    """A store as layout 1 wrote it: rows hold the sample and label blobs; row 5 deleted."""
    con = sqlite3.connect(db)
    con.executescript("""
PRAGMA journal_mode=WAL;
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE datasets(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, dtype TEXT NOT NULL,
  row_shape TEXT NOT NULL, label_dtype TEXT, label_shape TEXT NOT NULL, metric TEXT NOT NULL, metadata TEXT NOT NULL,
  next_index INTEGER NOT NULL DEFAULT 0, row_count INTEGER NOT NULL DEFAULT 0, row_bytes INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE rows(dataset_id INTEGER NOT NULL, idx INTEGER NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
  label BLOB, metadata TEXT);
CREATE UNIQUE INDEX rows_by_index ON rows(dataset_id, idx);
CREATE UNIQUE INDEX rows_by_id ON rows(dataset_id, id);
CREATE TABLE checkpoints(model TEXT NOT NULL, epoch INTEGER NOT NULL, created_at TEXT NOT NULL, metrics TEXT NOT NULL,
  metadata TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY(model, epoch)) WITHOUT ROWID;
CREATE TABLE checkpoint_arrays(model TEXT NOT NULL, epoch INTEGER NOT NULL, name TEXT NOT NULL, chunk INTEGER NOT NULL,
  dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(model, epoch, name, chunk));
CREATE TABLE progress(run TEXT NOT NULL, rank INTEGER NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL,
  metrics TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(run, rank)) WITHOUT ROWID;
INSERT INTO meta VALUES('layout_version', '1');
INSERT INTO meta VALUES('created_at', '2026-01-01T00:00:00.000Z');
""")
    n = len(x)
    con.execute("INSERT INTO datasets(name, dtype, row_shape, label_dtype, label_shape, metric, metadata, next_index,"
                " row_count, row_bytes, version, created_at) VALUES('old', 'float32', ?, 'int64', '[]', 'euclidean',"
                " '{}', ?, ?, ?, 1, '2026-01-01T00:00:00.000Z')",
                (f"[{x.shape[1]}]", n, n - 1, (n - 1) * (x.shape[1] * 4 + 8)))
    con.executemany("INSERT INTO rows VALUES(1, ?, ?, ?, ?, ?)",
                    [(i, f"r{i}", x[i].tobytes(), labels[i].tobytes(), f'{{"k": {i}}}') for i in range(n) if i != 5])
    con.commit()
    con.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
