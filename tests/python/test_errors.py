# SPDX-License-Identifier: MIT
# vstash.open and the exception hierarchy: profiles by name or dict (validated like YAML
# profiles, secrets never echoed), bad input as one-line UsageErrors with the exit codes.
import os

import numpy as np
import pytest
import yaml

import vstash
from conftest import CONFIG, PROFILE


def test_hierarchy_and_exit_codes():
    assert issubclass(vstash.UsageError, vstash.Error) and issubclass(vstash.Error, Exception)
    codes = {vstash.Error: 1, vstash.UsageError: 2, vstash.RetryableError: 3, vstash.NotFoundError: 4,
             vstash.ConflictError: 5}
    for cls, code in codes.items():
        assert cls.exit_code == code


def test_open_by_dict_like_the_profile(target, name):
    """The profile's keys as a dict open the same store."""
    if CONFIG:
        values = yaml.safe_load(open(CONFIG))["profiles"][PROFILE]
    else:
        values = yaml.safe_load(open(target.config))["profiles"]["local"]
    s = vstash.open(dict(values))
    s.insert_vector("x", np.ones(4, np.float32), dataset=name)
    assert [h.id for h in target.open().query(np.ones(4), top_k=1, dataset=name)] == ["x"]
    shown = repr(s) + repr(s.config)
    for secret_key in ("api_key", "password"):
        if secret_key in values:
            assert str(values[secret_key]) not in shown and s.config[secret_key] == "***"


def test_documented_pinecone_dict_is_valid_and_secret_stays_secret():
    config = {"type": "pinecone", "api_key": "sk-SECRET-123", "environment": "us-east-1",
              "index_name": "quantum-ml-training", "dimension": 768, "metric": "cosine",
              "host": "http://127.0.0.1:9/index/{index}", "control_host": "http://127.0.0.1:9",
              "max_attempts": 1, "connect_timeout_ms": 200}
    try:
        s = vstash.open(config)
        with pytest.raises(vstash.RetryableError) as e:
            s.get_statistics()
        assert "sk-SECRET-123" not in str(e.value) and "sk-SECRET-123" not in repr(s)
    except vstash.RetryableError as e:  # a backend may connect on open
        assert "sk-SECRET-123" not in str(e)


@pytest.mark.parametrize("config,match", [
    ({"type": "local", "hots": "x"}, 'unknown key "hots"'),
    ({"type": "redis", "port": "many"}, 'key "port": expected an integer'),
    ({"type": "local", "index_name": "x"}, 'key "index_name" does not apply to type "local"'),
    ({"type": "nosuch"}, 'unknown type "nosuch"'),
    ({"path": "/tmp/x"}, 'missing key "type"'),
    ({"type": "local", "path": {"nested": 1}}, 'key "path" must be a single value'),
    ({"type": "pinecone", "api_key": "${VSTASH_SURELY_UNSET_VAR}"}, "VSTASH_SURELY_UNSET_VAR is not set"),
    (42, "config: expected a profile name or a dict"),
])
def test_bad_config(config, match):
    with pytest.raises(vstash.UsageError, match=match) as e:
        vstash.open(config)
    assert "\n" not in str(e.value)


def test_unknown_profile_is_not_found(target):
    with pytest.raises(vstash.NotFoundError, match="nosuchprofile"):
        vstash.open("nosuchprofile", config_file=target.config)


def test_bad_training_input(store, name):
    with pytest.raises(vstash.UsageError, match=r"data: 1 row\(s\) contain NaN or Inf \(rows 2\)"):
        store.store_training_data(name, np.array([[0.0], [1.0], [np.nan]]), None)
    with pytest.raises(vstash.UsageError, match="labels: 2 labels for 3 data rows"):
        store.store_training_data(name, np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(vstash.UsageError, match="dtype <U1 is not supported"):
        store.store_training_data(name, np.array([["a"]]), None)
    with pytest.raises(vstash.UsageError, match="dtype complex128 is not supported"):
        store.store_training_data(name, np.zeros((2, 2), complex), None)
    with pytest.raises(vstash.UsageError, match="scalar"):
        store.store_training_data(name, np.float32(1), None)
    with pytest.raises(vstash.UsageError, match="ids: row 1: duplicate id"):
        store.store_training_data(name, np.zeros((2, 2)), None, ids=["a", "a"])
    with pytest.raises(vstash.UsageError, match="nested deeper than 64"):
        deep = {}
        for _ in range(100):
            deep = {"x": deep}
        store.store_training_data(name, np.zeros((2, 2)), None, deep)
    with pytest.raises(vstash.UsageError, match="dataset name"):
        store.store_training_data("bad\nname", np.zeros((2, 2)), None)
    with pytest.raises(vstash.UsageError, match="batch_size: must be between 1 and 16777216, got 0"):
        store.load_training_batch(name, 0)
    with pytest.raises(vstash.UsageError, match="batch_size: must be between 1 and 16777216"):
        store.create_data_loader(name, batch_size=1 << 30)
    with pytest.raises(vstash.UsageError, match="num_workers"):
        store.create_data_loader(name, num_workers=1000)
    with pytest.raises(vstash.NotFoundError, match="does not exist"):
        store.load_training_batch(name + "-missing", 4)
    with pytest.raises(vstash.NotFoundError):
        store.create_data_loader(name + "-missing")
    with pytest.raises(vstash.UsageError, match="rank"):
        store.create_data_loader(name, rank=2, world_size=2)
    with pytest.raises(vstash.UsageError, match="remainder"):
        store.load_training_batch(name, 4, remainder="sideways")
    with pytest.raises(TypeError):
        store.load_training_batch(name)  # batch_size is required, as documented
