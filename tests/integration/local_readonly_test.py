# SPDX-License-Identifier: MIT
# Read commands on the local store never write it and never create it (issue 14, line 4):
#   - stats, query, batch (also --stream), export, get, checkpoint load/list, progress show
#     and prune --dry-run work on a store whose file AND directory the user may not write,
#     after a clean close (no -wal/-shm files) and while a writer holds it open, and leave
#     the directory as it was;
#   - a mistyped path is exit 4 naming the path, and nothing is created there; a write
#     command (ingest) still creates the store; a store file another process is still
#     creating (no tables committed yet) is exit 4 too.
# Root may write anything, so under root the read commands run as user "nobody" (setpriv),
# from a copy of the binary that nobody can reach (the build tree may be under /root);
# under another user, chmod alone makes the store read-only.
# Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/local_readonly_test.py
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

import numpy as np

VSTASH = os.path.abspath(os.environ.get("VSTASH_BIN", "vstash"))
AS_READER = (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else [])
READ_COMMANDS = [
    ("stats",),
    ("--dataset", "ds", "query", "[1, 0, 0, 0]", "-k", "3"),
    ("--dataset", "ds", "batch", "--size", "8", "--offset", "4", "-o", "{out}/batch.npy"),
    ("--dataset", "ds", "batch", "--size", "8", "--stream", "--workers", "2", "-o", "{out}/stream{{}}.npy"),
    ("--dataset", "ds", "export", "-o", "{out}/export.npy"),
    ("--dataset", "ds", "get", "3"),
    ("checkpoint", "load", "net@latest", "-o", "{out}/ckpt.npy"),
    ("checkpoint", "list"),
    ("checkpoint", "prune", "--model", "net", "--keep", "1", "--dry-run"),
    ("--dataset", "ds", "delete", "--ids", "1,2", "--dry-run"),
    ("progress", "show"),
]


def setUpModule():
    global READER_VSTASH
    READER_VSTASH = VSTASH
    if AS_READER:
        bin_dir = tempfile.mkdtemp(prefix="vstash-ro-bin-")
        os.chmod(bin_dir, 0o755)
        READER_VSTASH = shutil.copy(VSTASH, os.path.join(bin_dir, "vstash"))
        os.chmod(READER_VSTASH, 0o755)


def tearDownModule():
    if READER_VSTASH != VSTASH:
        shutil.rmtree(os.path.dirname(READER_VSTASH), ignore_errors=True)


class ReadOnlyStore(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="vstash-ro-")
        self.addCleanup(self.cleanup)
        os.chmod(self.root, 0o755)
        self.store_dir = os.path.join(self.root, "store")
        self.store = os.path.join(self.store_dir, "local.db")
        self.out = os.path.join(self.root, "out")  # where the reader writes its files
        os.makedirs(self.out)
        os.chmod(self.out, 0o777)
        self.config = os.path.join(self.root, "vstash.yaml")
        with open(self.config, "w") as f:
            f.write(f"default: local\nprofiles:\n  local:\n    type: local\n    path: {self.store}\n"
                    f"  typo:\n    type: local\n    path: {self.root}/stroe/local.db\n")
        os.chmod(self.config, 0o644)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VSTASH_")}
        self.env.update(VSTASH_CONFIG=self.config, VSTASH_NO_PROGRESS="1", HOME=self.root)

    def cleanup(self):
        for d, _, _ in os.walk(self.root):
            os.chmod(d, 0o755)
        shutil.rmtree(self.root, ignore_errors=True)

    def vstash(self, *args, reader=False):
        cmd = [*AS_READER, READER_VSTASH] if reader else [VSTASH]
        return subprocess.run([*cmd, *args], env=self.env, capture_output=True, text=True, timeout=300,
                              cwd=self.root)

    def ok(self, *args, reader=False):
        p = self.vstash(*args, reader=reader)
        self.assertEqual(p.returncode, 0, f"vstash {' '.join(args)}: {p.stderr}")
        return p

    def fill(self):
        self.data = np.random.default_rng(1).random((40, 4), dtype=np.float32)
        np.save(os.path.join(self.root, "d.npy"), self.data)
        np.save(os.path.join(self.root, "p.npy"), np.arange(6, dtype=np.float32))
        self.ok("ingest", os.path.join(self.root, "d.npy"), "--dataset", "ds")
        self.ok("checkpoint", "save", "--model", "net", "--epoch", "2", "--params", os.path.join(self.root, "p.npy"))
        self.ok("progress", "record", "--run", "r", "--rank", "0", "--epoch", "1", "--step", "5")

    def make_read_only(self):
        os.chmod(self.store, 0o444)
        segments = self.store + ".segments"  # the rows' segment files (layout 2)
        for name in os.listdir(segments):
            os.chmod(os.path.join(segments, name), 0o444)
        os.chmod(segments, 0o555)
        os.chmod(self.store_dir, 0o555)
        if not AS_READER:
            return
        probe = subprocess.run([*AS_READER, READER_VSTASH, "--version"], capture_output=True, text=True)
        self.assertEqual(probe.returncode, 0, f"user nobody cannot run {READER_VSTASH}: {probe.stderr}")

    def listing(self):
        return sorted((n, os.stat(os.path.join(self.store_dir, n)).st_mtime_ns) for n in os.listdir(self.store_dir))

    def check_reads(self):
        before = self.listing()
        for args in READ_COMMANDS:
            with self.subTest(command=" ".join(args)):
                p = self.ok(*[a.format(out=self.out) for a in args], reader=True)
                if args[0] == "stats":
                    self.assertRegex(p.stdout, r"(?m)^ds\s+40\s")
        np.testing.assert_array_equal(np.load(os.path.join(self.out, "batch.npy")), self.data[4:12])
        np.testing.assert_array_equal(np.load(os.path.join(self.out, "export.npy")), self.data)
        np.testing.assert_array_equal(np.load(os.path.join(self.out, "ckpt.npy")), np.arange(6, dtype=np.float32))
        np.testing.assert_array_equal(np.load(os.path.join(self.out, "stream000004.npy")), self.data[32:40])
        self.assertEqual(self.listing(), before, "a read command changed the store's directory")

    def test_reads_of_a_cleanly_closed_store_in_a_read_only_directory(self):
        self.fill()
        # No -wal/-shm after a clean close; the segment files sit beside the store.
        self.assertEqual(sorted(os.listdir(self.store_dir)), ["local.db", "local.db.segments"])
        self.make_read_only()
        self.check_reads()
        # A write is refused by the file system, in one line, and changes nothing.
        p = self.vstash("--dataset", "ds", "delete", "--id", "1", reader=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)

    def test_reads_while_a_writer_holds_the_store_open(self):
        self.fill()
        writer = sqlite3.connect(self.store)  # leaves -wal and -shm beside the store
        self.addCleanup(writer.close)
        writer.execute("SELECT count(*) FROM rows").fetchall()
        self.assertTrue(os.path.exists(self.store + "-shm"))
        self.make_read_only()
        self.check_reads()

    def test_a_mistyped_path_is_not_found_and_creates_nothing(self):
        for args in (("stats",), ("--dataset", "ds", "query", "[1, 0]"), ("checkpoint", "list"),
                     ("--dataset", "ds", "batch", "--size", "2", "-o", "b.npy")):
            with self.subTest(command=" ".join(args)):
                p = self.vstash("--profile", "typo", *args)
                self.assertEqual(p.returncode, 4, p.stderr)
                self.assertEqual(p.stderr.strip(), f"vstash: error: {self.root}/stroe/local.db: no local store here "
                                                   "(check the profile's path)")
                self.assertFalse(os.path.exists(os.path.join(self.root, "stroe")))
        # Writes still create the store.
        np.save(os.path.join(self.root, "d.npy"), np.ones((3, 2), np.float32))
        self.ok("--profile", "typo", "ingest", os.path.join(self.root, "d.npy"), "--dataset", "ds")
        stats = json.loads(self.ok("--profile", "typo", "stats", "--json").stdout)
        self.assertEqual([d["rows"] for d in stats["datasets"]], [3])


    def test_a_store_still_being_created_is_not_found_yet(self):
        # Another process creating the store has made the file (empty, or WAL mode with its
        # tables not yet committed): a read command says there is no store yet (exit 4, as
        # for a missing path), not that the file is foreign. A file with other tables is.
        path = os.path.join(self.root, "stroe", "local.db")
        os.makedirs(os.path.dirname(path))
        expected = f"vstash: error: {path}: no local store here (check the profile's path)"
        open(path, "wb").close()
        p = self.vstash("--profile", "typo", "stats")
        self.assertEqual((p.returncode, p.stderr.strip()), (4, expected))
        os.remove(path)
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL").fetchall()
        db.close()
        p = self.vstash("--profile", "typo", "stats")
        self.assertEqual((p.returncode, p.stderr.strip()), (4, expected))
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE other(x)")
        db.commit()
        db.close()
        p = self.vstash("--profile", "typo", "stats")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("not a vstash local store", p.stderr)

if __name__ == "__main__":
    unittest.main()
