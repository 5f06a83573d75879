# SPDX-License-Identifier: MIT
# insert_vector, batch_insert, query, update_vector, delete_vector, get_statistics.
import numpy as np
import pytest

import vstash


def test_vector_methods(store, name):
    store.insert_vector("a", np.array([1, 0, 0, 0], np.float32), {"genre": "drama", "year": 2020}, dataset=name)
    with pytest.raises(vstash.ConflictError, match='id "a" already exists'):
        store.insert_vector("a", np.ones(4, np.float32), dataset=name)
    store.insert_vector("a", np.array([1, 0.1, 0, 0], np.float32), {"genre": "drama", "year": 2020}, dataset=name,
                        upsert=True)
    store.batch_insert(["b", "c", "d"], [np.array([0, 1, 0, 0]), np.array([0.9, 0.1, 0, 0]), np.array([0, 0, 1, 0])],
                       [{"genre": "comedy", "year": 2018}, {"genre": "drama", "year": 2023}, None], dataset=name)
    hits = store.query(np.array([1, 0, 0, 0], np.float32), top_k=2, dataset=name)
    assert [h.id for h in hits] == ["a", "c"]
    assert isinstance(hits[0], vstash.QueryResult) and hits[0].score > hits[1].score
    assert hits[0].metadata == {"genre": "drama", "year": 2020}
    hits = store.query([1, 0, 0, 0], 10, {"year": {"$gte": 2019}, "genre": "drama"}, dataset=name,
                       include_values=True)
    assert [h.id for h in hits] == ["a", "c"]
    assert hits[0].values.dtype == np.float32 and np.allclose(hits[0].values, [1, 0.1, 0, 0])
    store.update_vector("b", np.array([1, 0, 0, 0.01], np.float32), {"year": None, "new": True}, dataset=name)
    hits = store.query(np.array([1, 0, 0, 0]), top_k=1, filter={"new": True}, dataset=name)
    assert hits[0].id == "b" and hits[0].metadata == {"genre": "comedy", "new": True}
    store.update_vector("b", None, {"only": "meta"}, dataset=name)
    store.delete_vector("b", dataset=name)
    with pytest.raises(vstash.NotFoundError, match='no row with id "b"'):
        store.delete_vector("b", dataset=name)
    store.delete_vector("b", dataset=name, ignore_missing=True)
    with pytest.raises(vstash.NotFoundError):
        store.update_vector("b", np.ones(4), dataset=name)
    info = [d for d in store.get_statistics()["datasets"] if d["name"] == name][0]
    assert info["rows"] == 3 and info["dimension"] == 4


def test_default_dataset_from_open(target, name):
    s = target.open(dataset=name)
    assert s.dataset == name
    s.batch_insert(["x", "y"], np.eye(3, dtype=np.float64)[:2])
    assert [h.id for h in s.query(np.array([0, 1, 0]), top_k=1)] == ["y"]


def test_vector_bad_input(store, name):
    store.insert_vector("a", np.ones(4, np.float32), dataset=name)
    with pytest.raises(vstash.UsageError, match="dimension 3"):
        store.insert_vector("b", np.ones(3), dataset=name)
    with pytest.raises(vstash.UsageError, match="dimension 5"):
        store.query(np.ones(5), dataset=name)
    with pytest.raises(vstash.UsageError, match="not finite"):
        store.query(np.array([np.nan, 0, 0, 0]), dataset=name)
    with pytest.raises(vstash.UsageError, match="NaN or Inf"):
        store.insert_vector("c", np.array([np.inf, 0, 0, 0]), dataset=name)
    with pytest.raises(vstash.UsageError, match="top_k"):
        store.query(np.ones(4), top_k=0, dataset=name)
    with pytest.raises(vstash.UsageError, match=r"filter.*\$gte"):
        store.query(np.ones(4), filter={"year": {"$gte": "x"}}, dataset=name)
    with pytest.raises(vstash.UsageError, match="2 vectors for 3 ids"):
        store.batch_insert(["p", "q", "r"], np.ones((2, 4)), dataset=name)
    with pytest.raises(vstash.UsageError, match="duplicate id"):
        store.batch_insert(["p", "p"], np.ones((2, 4)), dataset=name)
    with pytest.raises(vstash.UsageError, match="metadata: expected a dict"):
        store.insert_vector("d", np.ones(4), ["not", "a", "dict"], dataset=name)
    with pytest.raises(vstash.NotFoundError, match="does not exist"):
        store.query(np.ones(4), dataset=name + "-missing")
