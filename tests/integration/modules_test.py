#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The executable loads only what a command needs (src/util/module.hpp): HDF5, pgvector and the
REST stores are shared modules beside it (vstash-hdf5.so, vstash-pgvector.so, vstash-rest.so),
loaded on first use. `vstash --version` and `vstash batch` on the local store map none of them
nor libhdf5/libpq/libcurl (seen with LD_DEBUG=files); an .h5 ingest, a pgvector and a qdrant
profile load their module (the stores on a closed port: exit 3, so every module symbol resolved);
an executable copied away from its modules says which one is missing, exit 1.

Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/modules_test.py [-v]
"""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import h5py
import numpy as np

VSTASH = os.environ.get("VSTASH_BIN", "")
HEAVY = ("libhdf5", "libpq", "libcurl", "vstash-hdf5.so", "vstash-pgvector.so", "vstash-rest.so")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModulesTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(VSTASH and os.access(VSTASH, os.X_OK), f"VSTASH_BIN={VSTASH!r} is not an executable")
        self.dir = tempfile.mkdtemp(prefix="vstash-modules-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        port = closed_port()
        self.config = os.path.join(self.dir, "vstash.yaml")
        with open(self.config, "w") as f:
            f.write(f"profiles:\n  local:\n    type: local\n    path: {self.dir}/store/local.db\n"
                    f"  pg:\n    type: pgvector\n    host: 127.0.0.1\n    port: {port}\n    connect_timeout: 2\n"
                    f"  qd:\n    type: qdrant\n    host: 127.0.0.1\n    port: {port}\n    max_attempts: 1\n"
                    f"    connect_timeout_ms: 2000\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VSTASH_", "LD_"))}
        self.env.update(VSTASH_CONFIG=self.config, HOME=self.dir)

    def run_vstash(self, *args, debug=False, exe=None):
        env = dict(self.env, LD_DEBUG="files") if debug else self.env
        return subprocess.run([exe or VSTASH, *args], env=env, capture_output=True, text=True, timeout=120)

    def loaded(self, stderr):
        """The files ld.so mapped (LD_DEBUG=files: "file=NAME [0];  needed by ..." / "dynamically loaded by")."""
        return [line.split("file=", 1)[1].split()[0] for line in stderr.splitlines() if "file=" in line]

    def assert_light(self, r):
        heavy = [f for f in self.loaded(r.stderr) if f.startswith(HEAVY) or "/vstash-" in f]
        self.assertEqual(heavy, [], r.stderr[-2000:])

    def test_version_and_local_batch_load_no_module(self):
        r = self.run_vstash("--version", debug=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertTrue(self.loaded(r.stderr), "LD_DEBUG=files printed nothing")
        self.assert_light(r)
        x = os.path.join(self.dir, "x.npy")
        np.save(x, np.arange(64 * 8, dtype=np.float32).reshape(64, 8))
        r = self.run_vstash("--profile", "local", "ingest", x, "--dataset", "d", "--no-progress")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.dir, "b.npy")
        r = self.run_vstash("--profile", "local", "--dataset", "d", "batch", "--size", "16", "--shuffle", "--seed", "1",
                            "-o", out, debug=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(np.load(out).shape, (16, 8))
        self.assert_light(r)

    def test_hdf5_ingest_loads_the_hdf5_module(self):
        h5 = os.path.join(self.dir, "x.h5")
        with h5py.File(h5, "w") as f:
            f["train"] = np.ones((10, 4), dtype=np.float32)
        r = self.run_vstash("--profile", "local", "ingest", f"{h5}:/train", "--dataset", "h", "--no-progress",
                            debug=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        files = self.loaded(r.stderr)
        self.assertTrue(any(f.endswith("/vstash-hdf5.so") for f in files), files)
        self.assertTrue(any(f.startswith("libhdf5") for f in files), files)
        self.assertFalse(any(f.startswith("libpq") for f in files), files)  # Debian's libhdf5 needs libcurl
        out = os.path.join(self.dir, "back.h5")
        r = self.run_vstash("--profile", "local", "--dataset", "h", "batch", "--size", "10", "-o", f"{out}:/")
        self.assertEqual(r.returncode, 0, r.stderr)
        with h5py.File(out, "r") as f:
            self.assertEqual(f["data"].shape, (10, 4))

    def test_server_stores_load_their_module(self):
        for profile, module, lib in (("pg", "vstash-pgvector.so", "libpq"), ("qd", "vstash-rest.so", "libcurl")):
            r = self.run_vstash("--profile", profile, "stats", debug=True)
            self.assertEqual(r.returncode, 3, r.stderr[-2000:])  # unreachable: the module loaded whole
            files = self.loaded(r.stderr)
            self.assertTrue(any(f.endswith("/" + module) for f in files), (profile, files))
            self.assertTrue(any(f.startswith(lib) for f in files), (profile, files))
            self.assertFalse(any(f.startswith("libhdf5") for f in files), (profile, files))

    def test_missing_module_is_one_line_exit_1(self):
        alone = os.path.join(self.dir, "bin", "vstash")
        os.makedirs(os.path.dirname(alone))
        shutil.copy(VSTASH, alone)
        self.assertEqual(self.run_vstash("--version", exe=alone).returncode, 0)
        r = self.run_vstash("--profile", "pg", "stats", exe=alone)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("vstash-pgvector.so", lines[0])
        self.assertIn("not found", lines[0])


if __name__ == "__main__":
    unittest.main()
