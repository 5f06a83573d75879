# SPDX-License-Identifier: MIT
# The pgvector backend through the built binary, against the test server (issue 3):
#   - kill -9 in the middle of a binary-COPY ingest, then `ingest --resume`: no duplicate,
#     no gap, exact data;
#   - the server restarted in the middle of an ingest: exit 3 with one line naming
#     host:port/database, then `--resume` finishes the job;
#   - connection refused (exit 3), wrong password and missing database (exit 2): one line
#     each, naming host:port/database, the password never in any output.
# It restarts the server, so CTest runs it alone (RUN_SERIAL in tests/suites/pgvector.cmake).
# Run: VSTASH_BIN=build/vstash VSTASH_SOURCE_DIR=. VSTASH_TEST_STATE=... VSTASH_TEST_PG_PORT=55432 \
#      VSTASH_CONTRACT_CONFIG=$VSTASH_TEST_STATE/pgvector.yaml /usr/bin/python3 tests/integration/pgvector_test.py
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from clirun import wait_until  # this folder is on sys.path

VSTASH = os.environ.get("VSTASH_BIN", "vstash")
SOURCE = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.path.join(SOURCE, "tests", "servers", "postgres.sh")
CONFIG = os.environ.get("VSTASH_CONTRACT_CONFIG") or os.path.join(os.environ.get("VSTASH_TEST_STATE", ""),
                                                                  "pgvector.yaml")


def server(*args):
    p = subprocess.run(["bash", SERVER, *args], capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        raise AssertionError(f"postgres.sh {' '.join(args)} failed: {p.stderr}")
    return p.stdout.strip()


class Store:
    """The test server's profile on a table prefix of its own, written to a scratch file."""

    def __init__(self, root, prefix, **overrides):
        with open(CONFIG) as f:
            text = f.read()
        self.values = dict(re.findall(r"^    (\w+): (.*)$", text, re.M))
        self.values["table_name"] = prefix
        self.values.update({k: str(v) for k, v in overrides.items()})
        self.prefix = prefix
        self.password = self.values["password"]
        self.location = f"{self.values['host']}:{self.values['port']}/{self.values['database']}"
        self.config = os.path.join(root, f"{prefix}.yaml")
        with open(self.config, "w") as f:
            f.write("default: pg\nprofiles:\n  pg:\n")
            for k, v in self.values.items():
                f.write(f"    {k}: {json.dumps(v) if k in ('password', 'table_name', 'database') else v}\n")
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
        """Committed rows, read by the superuser straight from the catalog (0 before it exists)."""
        try:
            out = server("sql", self.values["database"],
                         f"SELECT live_rows FROM \"{self.prefix}_datasets\" WHERE name = '{dataset}'")
        except AssertionError:  # the catalog does not exist yet
            return 0
        return int(out) if out else 0

    def index_facts(self, dataset):
        """count, distinct ids, distinct indices, min and max index of the rows table."""
        table = server("sql", self.values["database"],
                       f"SELECT tbl FROM \"{self.prefix}_datasets\" WHERE name = '{dataset}'")
        out = server("sql", self.values["database"],
                     f"SELECT count(*), count(DISTINCT id), count(DISTINCT idx), min(idx), max(idx) FROM \"{table}\"")
        return [int(x) for x in out.split("|")]

    def export(self, dataset, out):
        self.run("--dataset", dataset, "export", "-o", out)
        return np.load(out), np.load(out[:-4] + ".ids.npy", allow_pickle=False)


class PgvectorIngestTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-pg-")
        self.store = Store(self.tmp.name, f"it{os.getpid()}_{int(time.time() * 1000) % 100000}")
        rng = np.random.default_rng(11)
        # Big enough that an ingest in 500-row transactions runs for a few seconds.
        self.data = rng.standard_normal((200_000, 32)).astype(np.float32)
        self.path = os.path.join(self.tmp.name, "data.npy")
        np.save(self.path, self.data)

    def tearDown(self):
        self.tmp.cleanup()

    def start_and_wait_for_rows(self, dataset):
        s = self.store
        writer = s.popen("--dataset", dataset, "ingest", self.path, "--batch-size", "500")
        wait_until(lambda: writer.poll() is not None or s.rows(dataset) >= 1000, 120, "the first committed batches")
        self.assertIsNone(writer.poll(), "ingest finished before it could be interrupted: make the file bigger")
        return writer

    def check_resume_completes(self, dataset):
        s = self.store
        committed = s.rows(dataset)
        self.assertGreater(committed, 0)
        self.assertLess(committed, len(self.data))
        again = s.run("--dataset", dataset, "ingest", self.path, check=False)
        self.assertEqual(again.returncode, 5, again.stderr)
        self.assertIn("--resume", again.stderr)
        # --no-index: the resume is under test here, not the HNSW build (unit-tested).
        s.run("--dataset", dataset, "ingest", self.path, "--resume", "--batch-size", "5000", "--no-index")
        n = len(self.data)
        self.assertEqual(s.index_facts(dataset), [n, n, n, 0, n - 1], "duplicates or gaps after --resume")
        data, ids = s.export(dataset, os.path.join(self.tmp.name, f"{dataset}.npy"))
        self.assertEqual(len(set(ids.tolist())), n)
        np.testing.assert_array_equal(data, self.data)

    def test_kill9_mid_ingest_then_resume_has_no_duplicates_or_gaps(self):
        writer = self.start_and_wait_for_rows("killed")
        writer.send_signal(signal.SIGKILL)
        writer.communicate()
        self.assertEqual(writer.returncode, -signal.SIGKILL)
        committed = self.store.rows("killed")
        self.assertEqual(committed % 500, 0, "a half-written batch is visible after kill -9")
        # Two writers commit blocks out of order, so the rows are whole 500-row blocks of the
        # file, not necessarily a prefix; each is the file's row of the same number.
        data, ids = self.store.export("killed", os.path.join(self.tmp.name, "partial.npy"))
        rows = ids.astype(np.int64)
        np.testing.assert_array_equal(data, self.data[rows])
        blocks, sizes = np.unique(rows // 500, return_counts=True)
        self.assertTrue((sizes == 500).all(), "a block is only partly committed")
        self.assertEqual(len(blocks) * 500, committed)
        self.check_resume_completes("killed")

    def test_server_restart_mid_ingest_is_retryable_then_resume_finishes(self):
        writer = self.start_and_wait_for_rows("restarted")
        server("restart")
        _, err = writer.communicate(timeout=300)
        self.assertEqual(writer.returncode, 3, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(self.store.location, lines[0])
        self.assertNotIn(self.store.password, err)
        self.check_resume_completes("restarted")


class PgvectorExactTest(unittest.TestCase):
    """query --exact runs without the HNSW index (the exact top 10, as numpy ranks it) and
    --ef reaches hnsw.ef_search (a narrow search loses neighbours)."""

    def test_exact_and_ef(self):
        with tempfile.TemporaryDirectory(prefix="vstash-pg-exact-") as root:
            s = Store(root, f"ex{os.getpid()}_{int(time.time() * 1000) % 100000}")
            rng = np.random.default_rng(12)
            x = rng.standard_normal((20_000, 32)).astype(np.float32)
            q = rng.standard_normal((50, 32)).astype(np.float32)
            np.save(os.path.join(root, "x.npy"), x)
            np.save(os.path.join(root, "q.npy"), q)
            s.run("--dataset", "ex", "ingest", os.path.join(root, "x.npy"), "--metric", "euclidean")

            def ids(*extra):
                out = s.run("--dataset", "ex", "query", "--queries", os.path.join(root, "q.npy"),
                            "--no-metadata", *extra).stdout
                return [[h["index"] for h in json.loads(line)["hits"]] for line in out.splitlines()]

            d = ((x[None, :, :].astype(np.float64) - q[:, None, :]) ** 2).sum(axis=2)
            truth = [list(np.argsort(row, kind="stable")[:10]) for row in d]
            self.assertEqual(ids("--exact"), truth)
            narrow = ids("--ef", "10")
            found = sum(len(set(a) & set(b)) for a, b in zip(narrow, truth))
            self.assertLess(found, 500, "--ef 10 found every neighbour: the index was not searched")
            self.assertEqual(s.run("--dataset", "ex", "query", "--queries", os.path.join(root, "q.npy"),
                                   "--ef", "1001", check=False).returncode, 2)
            s.run("--dataset", "ex", "delete", "--dataset-all", "--yes")


class PgvectorErrorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vstash-pg-")
        self.real_password = Store(self.tmp.name, "e").password

    def tearDown(self):
        self.tmp.cleanup()

    def expect(self, store, code, *needles):
        p = store.run("stats", check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(store.location, lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        for secret in (store.password, self.real_password):
            self.assertNotIn(secret, p.stdout + p.stderr)

    def test_connection_refused_exits_3(self):
        self.expect(Store(self.tmp.name, "e1", port=1), 3, "connection refused")

    def test_wrong_password_exits_2(self):
        self.expect(Store(self.tmp.name, "e2", password="not-the-Pa55word"), 2, "password authentication failed")

    def test_missing_database_exits_2(self):
        self.expect(Store(self.tmp.name, "e3", database="vstash_missing_db"), 2, "vstash_missing_db")

    def test_missing_extension_names_the_sql(self):
        self.expect(Store(self.tmp.name, "e4", database="vstash_noext"), 1, "CREATE EXTENSION vector;")

    def test_password_is_never_printed_by_stats_or_profiles(self):
        s = Store(self.tmp.name, "e5")
        out = s.run("stats", "--json").stdout + s.run("profiles", "show").stdout + s.run("--json", "profiles", "show").stdout
        self.assertIn("pgvector", out)
        self.assertNotIn(s.password, out)


class PrivateServer:
    """A PostgreSQL of this test alone (tests/servers/postgres.sh in a state dir of its own, on a
    port it picks), so that it can be restarted while other tests use the shared one."""

    def __init__(self, root):
        self.state = os.path.join(root, "pg-private")
        os.makedirs(self.state)
        os.chmod(root, 0o755)  # as root, the server runs as another user and must reach its dir
        self.env = dict(os.environ, VSTASH_TEST_STATE=self.state)
        self.script("start")
        self.config = os.path.join(self.state, "pgvector.yaml")

    def script(self, *args):
        p = subprocess.run(["bash", SERVER, *args], env=self.env, capture_output=True, text=True, timeout=180)
        if p.returncode != 0:
            raise AssertionError(f"postgres.sh {' '.join(args)} failed: {p.stderr}")

    def stop(self):
        self.script("stop")


def read_npy_stream(data):
    """The arrays of a `batch --stream -o -` output, in order."""
    import io
    f, out = io.BytesIO(data), []
    while f.tell() < len(data):
        out.append(np.load(f, allow_pickle=False))
    return out


class PgvectorRestartTest(unittest.TestCase):
    """The server restarted while a batch stream or queries run (issue 14, item 16): reads
    reconnect (waiting up to connect_timeout) and run once more, so each command ends in success
    with the right result; never exit 1, a hang or a wrong result. (An ingest across a restart
    is exit 3 and --resume: PgvectorIngestTest.)"""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="vstash-pg-restart-")
        cls.server = PrivateServer(cls.tmp.name)
        with open(cls.server.config) as f:
            text = f.read()
        cls.config = os.path.join(cls.tmp.name, "restart.yaml")
        with open(cls.config, "w") as f:
            # A restart takes a second or two; a read waits up to connect_timeout for the server.
            f.write("default: pg\n" + text.replace("connect_timeout: 5", "connect_timeout: 30"))
        cls.env = dict(os.environ, VSTASH_CONFIG=cls.config, VSTASH_NO_PROGRESS="1")
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            cls.env.pop(k, None)
        rng = np.random.default_rng(5)
        cls.data = rng.standard_normal((60_000, 32)).astype(np.float32)
        cls.path = os.path.join(cls.tmp.name, "data.npy")
        np.save(cls.path, cls.data)
        # --no-index: queries are exact scans, so a rerun must give the same hits.
        cls.cli("--dataset", "r", "ingest", cls.path, "--no-index")
        cls.queries = os.path.join(cls.tmp.name, "q.npy")
        np.save(cls.queries, rng.standard_normal((400, 32)).astype(np.float32))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    @classmethod
    def cli(cls, *args, check=True):
        p = subprocess.run([VSTASH, *args], env=cls.env, capture_output=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"vstash {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
        return p

    def restart_during(self, args, read_first):
        """Runs vstash ARGS, reads read_first bytes of its stdout, restarts the server, reads the
        rest; returns (exit code, stdout, stderr). Bounded: a hang fails the test."""
        proc = subprocess.Popen([VSTASH, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = b""
        while len(head) < read_first:  # unbuffered: communicate() below reads the fd directly
            chunk = os.read(proc.stdout.fileno(), read_first - len(head))
            if not chunk:
                break
            head += chunk
        self.assertIsNone(proc.poll(), "the command finished before the restart: give it more work")
        self.server.script("restart")
        try:
            tail, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"vstash {' '.join(args)} hangs after a server restart")
        err = err.decode()
        self.assertEqual(proc.returncode, 0, f"vstash {' '.join(args)} across a server restart: {err}")
        return head + tail

    def test_restart_during_a_batch_stream(self):
        out = self.restart_during(["--dataset", "r", "batch", "--size", "256", "--stream", "-o", "-"],
                                  256 * 32 * 4 * 20)
        arrays = [a for a in read_npy_stream(out) if a.ndim == 2]
        np.testing.assert_array_equal(np.concatenate(arrays), self.data)

    def test_restart_during_queries(self):
        want = self.cli("--dataset", "r", "query", "--queries", self.queries, "-k", "5").stdout.splitlines()
        out = self.restart_during(["--dataset", "r", "query", "--queries", self.queries, "-k", "5"],
                                  len(b"\n".join(want[:20])))
        self.assertEqual(out.splitlines(), want, "queries across a restart gave other hits")


if __name__ == "__main__":
    for var in ("VSTASH_BIN", "VSTASH_TEST_STATE"):
        if not os.environ.get(var):
            sys.exit(f"pgvector_test.py: {var} must be set (see the header)")
    unittest.main(verbosity=2)
