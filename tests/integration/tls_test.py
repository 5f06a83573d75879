#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# TLS, for real (issue 14, item 15), with certificates made at test time (tests/servers/tls.sh):
#   - PostgreSQL with ssl=on (a private cluster of tests/servers/postgres.sh): sslmode
#     verify-full with tls_ca works; a wrong CA, a certificate for another host name and a
#     missing CA file are each refused with one line that says which, exit 2;
#   - https to private Qdrant and Pinecone doubles (tests/doubles/doublenet.py): tls_ca works;
#     a wrong CA and a wrong host name are refused, exit 2; a double that requires client
#     certificates refuses a client without tls_cert/tls_key (exit 2) and serves one with them;
#   - Redis: hiredis 0.14 has no TLS, so `tls: true`, a tls_* key or a rediss:// host is
#     refused with one line (exit 2) instead of talking in clear.
# Env: VSTASH_BIN, VSTASH_SOURCE_DIR, VSTASH_TEST_STATE, PYTHON (as ctest sets them).
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from clirun import wait_until  # this folder is on sys.path

VSTASH = os.environ["VSTASH_BIN"]
SRC = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
STATE = os.environ["VSTASH_TEST_STATE"]
PYTHON = os.environ.get("PYTHON", sys.executable)
SERVERS = os.path.join(SRC, "tests", "servers")
DOUBLES = os.path.join(SRC, "tests", "doubles")
API_KEY = "tls-test-key-4Rq"


def one_line_error(p, code):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == code, f"exit {p.returncode}, want {code}: {p.stderr!r}"
    assert len(lines) == 1 and lines[0].startswith("vstash: error: "), f"want one error line: {p.stderr!r}"
    return lines[0]


class Double:
    """A private protocol double serving https on a port the kernel picks."""

    def __init__(self, root, script, cert, *args):
        self.root = root
        port_file = os.path.join(root, f"{script}.{time.monotonic_ns()}.port")
        self.proc = subprocess.Popen([PYTHON, os.path.join(DOUBLES, script), "--port", "0", "--port-file", port_file,
                                      "--api-key", API_KEY, "--tls-cert", cert + ".pem", "--tls-key", cert + ".key",
                                      *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"{script} exited: {self.proc.stderr.read().decode()}")
            return os.path.exists(port_file)

        wait_until(listening, 30, script)
        with open(port_file) as f:
            self.port = int(f.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.proc.stderr.close()


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(STATE, exist_ok=True)
        cls.root = tempfile.mkdtemp(prefix="tls-test-", dir=STATE)
        os.chmod(cls.root, 0o755)  # as root, PostgreSQL runs as another user and must reach its files
        cls.tls = os.path.join(cls.root, "tls")
        subprocess.run(["bash", os.path.join(SERVERS, "tls.sh"), "make", cls.tls], check=True)
        cls.data = os.path.join(cls.root, "d.npy")
        np.save(cls.data, np.random.default_rng(1).standard_normal((20, 8), dtype=np.float32))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def cert(self, name):
        return os.path.join(self.tls, name)

    def profile(self, name, values):
        path = os.path.join(self.root, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f"default: {name}\nprofiles:\n  {name}:\n")
            for k, v in values.items():
                f.write(f"    {k}: {json.dumps(v) if isinstance(v, str) else str(v).lower()}\n")
        return path

    def vstash(self, config, *args):
        env = dict(os.environ, VSTASH_CONFIG=config, VSTASH_NO_PROGRESS="1")
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            env.pop(k, None)
        return subprocess.run([VSTASH, *args], env=env, capture_output=True, text=True, timeout=300)

    def ingest_and_count(self, config, dataset, *profile):
        p = self.vstash(config, *profile, "--dataset", dataset, "ingest", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.vstash(config, *profile, "--json", "--dataset", dataset, "stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"rows": 20', p.stdout.replace('"rows":20', '"rows": 20'))

    # -- PostgreSQL ----------------------------------------------------------------------------

    def test_postgresql_verify_full(self):
        state = os.path.join(self.root, "pg")
        os.makedirs(state)
        env = dict(os.environ, VSTASH_TEST_STATE=state)
        server = os.path.join(SERVERS, "postgres.sh")

        def cert(name):  # the start script makes the cluster's certificates
            return os.path.join(state, "tls", name)

        def sql(text):
            subprocess.run(["bash", server, "sql", "postgres", text], env=env, check=True, capture_output=True)

        subprocess.run(["bash", server, "start"], env=env, check=True, capture_output=True)
        try:
            with open(os.path.join(state, "pg.port")) as f:
                port = int(f.read())
            base = {"type": "pgvector", "host": "127.0.0.1", "port": port, "database": "vstash_test", "user": "vstash",
                    "password": "vstash-test-pw-Q7x", "table_name": "tls", "sslmode": "verify-full"}
            # The profile the start script wrote, and tls_ca alone (sslmode then defaults to verify-full).
            self.ingest_and_count(os.path.join(state, "pgvector-tls.yaml"), "a", "--profile", "pg_tls")
            only_ca = dict(base, tls_ca=cert("ca.pem"))
            del only_ca["sslmode"]
            self.ingest_and_count(self.profile("pg_ca", only_ca), "b")

            line = one_line_error(self.vstash(self.profile("pg_other", dict(base, tls_ca=cert("other-ca.pem"))),
                                              "stats"), 2)
            self.assertIn("tls: the server's certificate does not verify against tls_ca", line)
            self.assertIn("other-ca.pem", line)
            line = one_line_error(self.vstash(self.profile("pg_noca", dict(base, tls_ca="/nonexistent/ca.pem")),
                                              "stats"), 2)
            self.assertIn('tls: cannot use tls_ca "/nonexistent/ca.pem"', line)

            # The server now presents a certificate (from the right CA) for wrong.example.
            run = os.path.join(state, "pg-run")
            sql(f"ALTER SYSTEM SET ssl_cert_file = '{run}/wronghost.pem'")
            sql(f"ALTER SYSTEM SET ssl_key_file = '{run}/wronghost.key'")
            sql("SELECT pg_reload_conf()")
            config = self.profile("pg_wronghost", dict(base, tls_ca=cert("ca.pem")))

            def refused():
                p = self.vstash(config, "stats")
                return p.returncode != 0

            wait_until(refused, 20, "the server to load the wrong-host certificate")
            line = one_line_error(self.vstash(config, "stats"), 2)
            self.assertIn("tls: the server's certificate does not name host \"127.0.0.1\"", line)
            self.assertNotIn("vstash-test-pw-Q7x", line)
            # Without verification (sslmode require) the same server is usable: the refusal was the check.
            self.assertEqual(self.vstash(self.profile("pg_require", dict(base, sslmode="require")), "stats").returncode,
                             0)
        finally:
            subprocess.run(["bash", server, "stop"], env=env, capture_output=True)

    # -- Qdrant and Pinecone over https ---------------------------------------------------------

    def qdrant_profile(self, name, port, **extra):
        values = {"type": "qdrant", "host": "127.0.0.1", "port": port, "https": True, "api_key": API_KEY,
                  "collection_name": "tls", "max_attempts": 2}
        values.update(extra)
        return self.profile(name, values)

    def test_qdrant_https(self):
        good = Double(self.root, "qdrant_double.py", self.cert("server"), "--apply-delay-ms", "0")
        wrong = Double(self.root, "qdrant_double.py", self.cert("wronghost"))
        try:
            self.ingest_and_count(self.qdrant_profile("q_ok", good.port, tls_ca=self.cert("ca.pem")), "a")
            line = one_line_error(self.vstash(self.qdrant_profile("q_other", good.port,
                                                                  tls_ca=self.cert("other-ca.pem")), "stats"), 2)
            self.assertIn("tls: the server's certificate does not verify against tls_ca", line)
            line = one_line_error(self.vstash(self.qdrant_profile("q_wrong", wrong.port, tls_ca=self.cert("ca.pem")),
                                              "stats"), 2)
            self.assertIn("tls: the server's certificate does not name the host", line)
            line = one_line_error(self.vstash(self.qdrant_profile("q_noca", good.port, tls_ca="/nonexistent/ca.pem"),
                                              "stats"), 2)
            self.assertIn('tls: cannot use tls_ca "/nonexistent/ca.pem"', line)
            self.assertNotIn(API_KEY, line)
        finally:
            good.stop()
            wrong.stop()

    def test_client_certificates(self):
        double = Double(self.root, "qdrant_double.py", self.cert("server"), "--apply-delay-ms", "0",
                        "--tls-client-ca", self.cert("ca.pem"))
        try:
            line = one_line_error(self.vstash(self.qdrant_profile("c_none", double.port, tls_ca=self.cert("ca.pem")),
                                              "stats"), 2)
            self.assertIn("tls: the server wants a client certificate", line)
            self.ingest_and_count(self.qdrant_profile("c_ok", double.port, tls_ca=self.cert("ca.pem"),
                                                      tls_cert=self.cert("client.pem"),
                                                      tls_key=self.cert("client.key")), "a")
            line = one_line_error(self.vstash(self.qdrant_profile("c_half", double.port, tls_ca=self.cert("ca.pem"),
                                                                  tls_cert=self.cert("client.pem")), "stats"), 2)
            self.assertIn("tls_cert and tls_key go together", line)
        finally:
            double.stop()

    def test_pinecone_https(self):
        double = Double(self.root, "pinecone_double.py", self.cert("server"), "--index-ready-ms", "0")
        try:
            def profile(name, ca):
                return self.profile(name, {
                    "type": "pinecone", "api_key": API_KEY, "control_host": f"https://127.0.0.1:{double.port}",
                    "host": f"https://127.0.0.1:{double.port}/index/{{index}}", "index_name": "tls-{dimension}",
                    "dimension": 8, "metric": "cosine", "cloud": "aws", "region": "us-east-1", "wait": True,
                    "max_attempts": 2, "tls_ca": ca})

            self.ingest_and_count(profile("p_ok", self.cert("ca.pem")), "a")
            line = one_line_error(self.vstash(profile("p_other", self.cert("other-ca.pem")), "--dataset", "a",
                                              "stats"), 2)
            self.assertIn("tls: the server's certificate does not verify against tls_ca", line)
            self.assertNotIn(API_KEY, line)
        finally:
            double.stop()

    # -- Redis ----------------------------------------------------------------------------------

    def test_redis_tls_profiles_are_refused(self):
        for name, extra in (("r_tls", {"tls": True}), ("r_ca", {"tls_ca": self.cert("ca.pem")}),
                            ("r_url", {"host": "rediss://127.0.0.1:6380"})):
            values = {"type": "redis", "host": "127.0.0.1", "port": 1}
            values.update(extra)
            line = one_line_error(self.vstash(self.profile(name, values), "stats"), 2)
            self.assertIn("has no TLS", line)
            self.assertIn("tunnel", line)
        # tls: false is the plain connection it always was (here: nothing listens, exit 3).
        p = self.vstash(self.profile("r_plain", {"type": "redis", "host": "127.0.0.1", "port": 1, "tls": False}),
                        "stats")
        self.assertEqual(p.returncode, 3, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
