# SPDX-License-Identifier: MIT
# Implicit rows of the local store (layout 3, backends/local/localimplicit.cpp) through the
# built binary: an ingest without --ids stores no per-row entry in SQLite, a kill -9 in the
# middle of it leaves whole batches only, and `ingest --resume` finishes with no duplicate and
# no gap, every row still implicit (the committed rows it sends again are unchanged); then
# update, delete and compaction of implicit rows keep every other row as it was.
# Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/local_implicit_test.py
import json
import os
import signal
import sqlite3
import tempfile
import unittest

import numpy as np

from local_store_test import Store, wait_until


def store_facts(root, dataset):
    """(implicit_rows, rows entries, deletion entries) of the dataset, read straight from SQLite."""
    con = sqlite3.connect(f"file:{root}/store/local.db?mode=ro", uri=True)
    try:
        ds_id, implicit = con.execute("SELECT id, implicit_rows FROM datasets WHERE name = ?", (dataset,)).fetchone()
        explicit, = con.execute("SELECT count(*) FROM rows WHERE dataset_id = ?", (ds_id,)).fetchone()
        deleted, = con.execute("SELECT count(*) FROM row_deletions WHERE dataset_id = ?", (ds_id,)).fetchone()
    finally:
        con.close()
    return implicit, explicit, deleted


class LocalImplicitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-implicit-")
        self.store = Store(self.tmp.name)
        self.data = np.random.default_rng(11).standard_normal((200_000, 32)).astype(np.float32)
        self.path = os.path.join(self.tmp.name, "data.npy")
        np.save(self.path, self.data)

    def tearDown(self):
        self.tmp.cleanup()

    def test_kill9_mid_ingest_then_resume_keeps_every_row_implicit(self):
        s = self.store
        writer = s.popen("--dataset", "big", "ingest", self.path, "--batch-size", "500", "--no-index")
        try:
            wait_until(lambda: writer.poll() is not None or s.rows("big") >= 5000, 120, "committed batches")
            self.assertIsNone(writer.poll(), "ingest finished before it could be killed: make the file bigger")
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.communicate()
        committed = s.rows("big")
        self.assertEqual(committed % 500, 0, "a half-written batch is visible after kill -9")
        self.assertEqual(store_facts(self.tmp.name, "big"), (committed, 0, 0))
        data, ids = s.export("big", os.path.join(self.tmp.name, "partial.npy"))
        np.testing.assert_array_equal(data, self.data[:committed])
        s.run("--dataset", "big", "ingest", self.path, "--resume", "--no-index")
        data, ids = s.export("big", os.path.join(self.tmp.name, "full.npy"))
        np.testing.assert_array_equal(data, self.data)
        self.assertEqual(ids.tolist(), [str(i) for i in range(len(self.data))])
        self.assertEqual(store_facts(self.tmp.name, "big"), (len(self.data), 0, 0))

    def test_update_delete_compact_implicit_rows(self):
        s = self.store
        small = os.path.join(self.tmp.name, "small.npy")
        np.save(small, self.data[:3000])
        s.run("--dataset", "d", "ingest", small, "--no-index")
        self.assertEqual(store_facts(self.tmp.name, "d"), (3000, 0, 0))
        new = np.full((1, 32), 7.5, np.float32)
        np.save(os.path.join(self.tmp.name, "new.npy"), new)
        s.run("--dataset", "d", "update", "--id", "10", "--vector-file", os.path.join(self.tmp.name, "new.npy"),
              "--metadata", '{"k": 1}')
        s.run("--dataset", "d", "delete", "--ids", "20,2999", "--yes")
        self.assertEqual(store_facts(self.tmp.name, "d"), (3000, 1, 3))
        got = json.loads(s.run("--dataset", "d", "get", "10", "--json").stdout)
        self.assertEqual(got["rows"][0]["metadata"], {"k": 1})
        expect = self.data[:3000].copy()
        expect[10] = new[0]
        expect = np.delete(expect, [20, 2999], axis=0)
        expect_ids = [str(i) for i in range(3000) if i not in (20, 2999)]
        data, ids = s.export("d", os.path.join(self.tmp.name, "a.npy"))
        np.testing.assert_array_equal(data, expect)
        self.assertEqual(ids.tolist(), expect_ids)
        s.run("--dataset", "d", "compact")
        # Rows 0..9 stay implicit (position = index), the rest is materialised at its new slot.
        self.assertEqual(store_facts(self.tmp.name, "d"), (10, 2998 - 10, 0))
        data, ids = s.export("d", os.path.join(self.tmp.name, "b.npy"))
        np.testing.assert_array_equal(data, expect)
        self.assertEqual(ids.tolist(), expect_ids)
        hits = json.loads(s.run("--dataset", "d", "query", "--vector-file", os.path.join(self.tmp.name, "new.npy"),
                                "-k", "1", "--json", "--exact").stdout)
        self.assertIn('"10"', json.dumps(hits))


if __name__ == "__main__":
    unittest.main(verbosity=2)
