# SPDX-License-Identifier: MIT
# save_checkpoint / load_checkpoint: named arrays in every dtype, metrics, metadata, latest,
# conflicts and retention.
import math

import numpy as np
import pytest

import vstash


def test_save_and_load(store, model):
    params = np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4)
    path = store.save_checkpoint(model, 1, params, {"loss": 0.5, "acc": 0.9}, {"arch": "vqc", "layers": [4, 2]})
    assert path == f"{model}@1"
    state = {"parameters": params * 2, "optimizer/m": np.arange(5, dtype=np.float16),
             "optimizer/step": np.array(7, dtype=np.int64), "mask": np.array([True, False])}
    assert store.save_checkpoint(model, 2, state, {"loss": float("nan")}) == f"{model}@2"
    cp = store.load_checkpoint(f"{model}@1")
    assert cp["epoch"] == 1 and cp["model"] == model and cp["path"] == f"{model}@1"
    assert cp["parameters"].dtype == np.float64 and np.array_equal(cp["parameters"], params)
    assert cp["metrics"] == {"loss": 0.5, "acc": 0.9} and cp["metadata"] == {"arch": "vqc", "layers": [4, 2]}
    latest = store.load_checkpoint(f"{model}@latest")
    assert latest["epoch"] == 2 and math.isnan(latest["metrics"]["loss"])
    for key, value in state.items():
        got = latest["arrays"][key]
        assert got.dtype == value.dtype and got.shape == value.shape and got.tobytes() == value.tobytes()
    assert [c["path"] for c in store.list_checkpoints(model)] == [f"{model}@1", f"{model}@2"]


def test_conflict_overwrite_and_retention(store, model):
    store.save_checkpoint(model, 0, np.zeros(3), {"loss": 3.0})
    with pytest.raises(vstash.ConflictError, match="already exists"):
        store.save_checkpoint(model, 0, np.ones(3), {"loss": 1.0})
    assert np.array_equal(store.load_checkpoint(f"{model}@0")["parameters"], np.zeros(3))
    store.save_checkpoint(model, 0, np.ones(3), {"loss": 1.0}, overwrite=True)
    assert np.array_equal(store.load_checkpoint(f"{model}@0")["parameters"], np.ones(3))
    store.save_checkpoint(model, 1, np.ones(3), {"loss": 2.0})
    store.save_checkpoint(model, 2, np.ones(3), {"loss": 0.5}, keep=2)
    assert [c["epoch"] for c in store.list_checkpoints(model)] == [1, 2]
    with pytest.raises(vstash.NotFoundError):
        store.load_checkpoint(f"{model}@0")


def test_checkpoint_bad_input(store, model):
    with pytest.raises(vstash.UsageError, match="epoch"):
        store.save_checkpoint(model, -1, np.zeros(2), {})
    with pytest.raises(vstash.UsageError, match="model"):
        store.save_checkpoint("bad name!", 0, np.zeros(2), {})
    with pytest.raises(vstash.UsageError, match="metrics"):
        store.save_checkpoint(model, 0, np.zeros(2), {"loss": "low"})
    with pytest.raises(vstash.UsageError, match="dtype object"):
        store.save_checkpoint(model, 0, np.array([object()]), {})
    with pytest.raises(vstash.UsageError):
        store.load_checkpoint("no-epoch-here")
    with pytest.raises(vstash.NotFoundError):
        store.load_checkpoint(f"{model}@latest")
