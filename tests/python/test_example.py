# SPDX-License-Identifier: MIT
# python/examples/train_tiny.py trains from a vstash dataset and checkpoints every epoch.
import os
import subprocess
import sys
import uuid

from conftest import SOURCE_DIR


def test_train_tiny_example(store, target):
    dataset, model = "tiny-" + uuid.uuid4().hex[:8], "tiny-" + uuid.uuid4().hex[:8]
    cmd = [sys.executable, str(SOURCE_DIR / "python/examples/train_tiny.py"), "--profile", target.profile,
           "--config", target.config, "--dataset", dataset, "--model", model, "--epochs", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert [c["epoch"] for c in store.list_checkpoints(model)] == [0, 1, 2]
    losses = [store.load_checkpoint(f"{model}@{e}")["metrics"]["loss"] for e in range(3)]
    assert losses[2] < losses[0] < 0.7
    resumed = subprocess.run(cmd[:-1] + ["1", "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    cp = store.load_checkpoint(f"{model}@latest")
    assert cp["epoch"] == 3 and cp["arrays"]["optimizer/velocity"].shape == cp["parameters"].shape
