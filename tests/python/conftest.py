# SPDX-License-Identifier: MIT
# The Python API's suite runs against the store named by VSTASH_PY_CONFIG (a profile file a
# server fixture wrote) and VSTASH_PY_PROFILE; without them, against a fresh local store in a
# temp dir. A missing profile file is a skip on a developer's machine and a failure under CI=true.
import os
import pathlib
import subprocess
import uuid

import numpy as np
import pytest

import vstash

CONFIG = os.environ.get("VSTASH_PY_CONFIG", "")
PROFILE = os.environ.get("VSTASH_PY_PROFILE", "")
CI = os.environ.get("CI") == "true"
SOURCE_DIR = pathlib.Path(os.environ.get("VSTASH_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
VSTASH_BIN = os.environ.get("VSTASH_BIN", "vstash")

# Tests of the binding itself (references, memory, signals) run once, on the local store.
local_only = pytest.mark.skipif(bool(CONFIG), reason="binding-level test: runs in the local suite")


class Target:
    """Where the suite's store is: a profile file and a profile name."""

    def __init__(self, config, profile):
        self.config = config
        self.profile = profile

    def open(self, **kw):
        return vstash.open(self.profile, config_file=self.config, **kw)

    def cli(self, *args, check=True, **kw):
        """Runs the vstash binary on the same profile; returns the CompletedProcess."""
        cmd = [VSTASH_BIN, "--config", self.config, "--profile", self.profile, "--no-progress", *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=300, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')}")
        return proc


@pytest.fixture(scope="session")
def target(tmp_path_factory):
    if CONFIG:
        if not os.path.exists(CONFIG):
            message = f"{CONFIG}: no profile file (is the server fixture running?)"
            if CI:
                pytest.fail(message)
            pytest.skip(message)
        return Target(CONFIG, PROFILE)
    d = tmp_path_factory.mktemp("store")
    config = d / "vstash.yaml"
    config.write_text(f"profiles:\n  local:\n    type: local\n    path: {d}/store.db\n")
    return Target(str(config), "local")


@pytest.fixture(scope="session")
def store(target):
    return target.open()


@pytest.fixture
def name():
    """A dataset name of this test alone (the servers are shared by parallel suites)."""
    return "py-" + uuid.uuid4().hex[:12]


@pytest.fixture
def model():
    return "pym-" + uuid.uuid4().hex[:12]


def rows(n, dim, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * 10).astype(dtype)
