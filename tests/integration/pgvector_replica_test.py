# SPDX-License-Identifier: MIT
# pgvector read replicas (backends/pgvector/pgreplicas.hpp) against a real streaming replica of
# the test server (tests/servers/postgres_replica.sh, started and stopped here):
#   - a profile with read_replicas writes to the primary and reads (`batch`, `export`, `get`,
#     `query`) from the replica: with the replica's replay paused, a row updated through the
#     profile is new on the primary and old in every read, and new again once replay resumes;
#   - an unreachable replica: one warning line naming it, the read served by the primary;
#   - a malformed read_replicas: exit 2, one line naming the key.
# Run: VSTASH_BIN=build/dev/vstash VSTASH_SOURCE_DIR=. VSTASH_TEST_STATE=... VSTASH_TEST_PG_PORT=...
#      VSTASH_TEST_PG_REPLICA_PORT=... /usr/bin/python3 tests/integration/pgvector_replica_test.py
# (tests/servers/postgres.sh must have started the primary).
import json
import os
import re
import subprocess
import tempfile
import unittest

import numpy as np

from pgvector_test import wait_until  # noqa: E402 (this folder is on sys.path)

VSTASH = os.environ.get("VSTASH_BIN", "vstash")
SOURCE = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
STATE = os.environ["VSTASH_TEST_STATE"]
PRIMARY = os.path.join(SOURCE, "tests", "servers", "postgres.sh")
REPLICA = os.path.join(SOURCE, "tests", "servers", "postgres_replica.sh")
ROWS = 16
PREFIX = f"vreplica{os.getpid()}"  # a table prefix of this run


def script(path, *args):
    p = subprocess.run(["bash", path, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{os.path.basename(path)} {' '.join(args)} failed: {p.stderr}")
    return p.stdout.strip()


def refused_port():
    """A loopback port nothing listens on (bound then closed)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReplicaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        script(REPLICA, "start")
        cls.tmp = tempfile.TemporaryDirectory()
        with open(os.path.join(STATE, "pgvector.yaml")) as f:
            base = f.read()
        with open(os.path.join(STATE, "pg-replica.port")) as f:
            cls.replica_port = int(f.read())
        profile = re.sub(r"table_name: \w+", f"table_name: {PREFIX}", base)
        cls.configs = {}
        for name, replicas in [("replica", f"127.0.0.1:{cls.replica_port}"),
                               ("down", f"127.0.0.1:{refused_port()}"), ("bad", "127.0.0.1")]:
            cls.configs[name] = os.path.join(cls.tmp.name, f"{name}.yaml")
            with open(cls.configs[name], "w") as f:
                f.write(profile + f'    read_replicas: "{replicas}"\n')
        cls.configs["primary"] = os.path.join(cls.tmp.name, "primary.yaml")
        with open(cls.configs["primary"], "w") as f:
            f.write(profile)

    @classmethod
    def tearDownClass(cls):
        try:
            script(REPLICA, "sql", "SELECT pg_wal_replay_resume()")
        finally:
            script(REPLICA, "stop")
            cls.tmp.cleanup()

    def vstash(self, config, *args, check=True):
        p = subprocess.run([VSTASH, "--config", config, "--profile", "pg", "--no-progress", *args],
                           capture_output=True, text=True, timeout=120)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def first_value(self, where, dataset):
        """Row "0"'s first value as the primary or the replica holds it (SQL, not vstash)."""
        table = script(PRIMARY, "sql", "vstash_test", f"SELECT tbl FROM {PREFIX}_datasets WHERE name = '{dataset}'")
        query = f"SELECT (embedding::real[])[1] FROM \"{table}\" WHERE id = '0'"
        out = script(PRIMARY, "sql", "vstash_test", query) if where == "primary" else script(REPLICA, "sql", query)
        return float(out) if out else None

    def test_reads_come_from_the_replica_and_writes_reach_the_primary(self):
        data = os.path.join(self.tmp.name, "x.npy")
        np.save(data, np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4))
        cfg = self.configs["replica"]
        self.vstash(cfg, "ingest", data, "--dataset", "r")
        self.assertEqual(self.first_value("primary", "r"), 0.0)
        wait_until(lambda: self.first_value("replica", "r") == 0.0, 30, "the replica to replay the ingest")
        script(REPLICA, "sql", "SELECT pg_wal_replay_pause()")
        wait_until(lambda: script(REPLICA, "sql", "SELECT pg_get_wal_replay_pause_state()") == "paused", 30,
                   "replay to pause")
        self.vstash(cfg, "--dataset", "r", "update", "--id", "0", "--vector", "[100, 1, 2, 3]")
        self.assertEqual(self.first_value("primary", "r"), 100.0)  # the write reached the primary
        self.assertEqual(self.first_value("replica", "r"), 0.0)

        def reads(config):
            got = {}
            out = os.path.join(self.tmp.name, "b.npy")
            self.vstash(config, "--dataset", "r", "batch", "--size", str(ROWS), "-o", out)
            got["batch"] = float(np.load(out)[0][0])
            exp = os.path.join(self.tmp.name, "e.npy")
            self.vstash(config, "--dataset", "r", "export", "-o", exp)
            got["export"] = float(np.load(exp)[0][0])
            rows = json.loads(self.vstash(config, "--json", "--dataset", "r", "get", "0", "--include-values").stdout)
            got["get"] = rows["rows"][0]["values"][0]
            query = os.path.join(self.tmp.name, "q.npy")
            np.save(query, np.array([100, 1, 2, 3], dtype=np.float32))
            hits = json.loads(self.vstash(config, "--json", "--dataset", "r", "query", "--vector-file", query, "-k", "1",
                                          "--exact", "--include-values").stdout)
            got["query"] = json.dumps(hits)
            return got

        stale, fresh = reads(cfg), reads(self.configs["primary"])
        self.assertEqual((stale["batch"], stale["export"], stale["get"]), (0.0, 0.0, 0.0),
                         "reads did not come from the replica")
        self.assertEqual((fresh["batch"], fresh["export"], fresh["get"]), (100.0, 100.0, 100.0))
        self.assertNotEqual(stale["query"], fresh["query"])
        script(REPLICA, "sql", "SELECT pg_wal_replay_resume()")
        wait_until(lambda: reads(cfg)["batch"] == 100.0, 30, "the replica to replay the update")

    def test_an_unreachable_replica_warns_once_and_the_primary_serves(self):
        data = os.path.join(self.tmp.name, "y.npy")
        np.save(data, np.ones((4, 4), dtype=np.float32))
        self.vstash(self.configs["primary"], "ingest", data, "--dataset", "d")
        out = os.path.join(self.tmp.name, "d.npy")
        p = self.vstash(self.configs["down"], "--dataset", "d", "batch", "--size", "4", "-o", out)
        warnings = [line for line in p.stderr.splitlines() if "warning" in line]
        self.assertEqual(len(warnings), 1, p.stderr)
        self.assertIn("read replica 127.0.0.1:", warnings[0])
        self.assertIn("reading from the primary", warnings[0])
        self.assertEqual(np.load(out).shape, (4, 4))

    def test_a_malformed_read_replicas_is_a_usage_error(self):
        out = os.path.join(self.tmp.name, "bad.npy")
        p = self.vstash(self.configs["bad"], "--dataset", "d", "batch", "--size", "4", "-o", out, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("read_replicas", p.stderr)
        self.assertNotIn("vstash-test-pw", p.stderr)


if __name__ == "__main__":
    unittest.main()
