# SPDX-License-Identifier: MIT
# store_training_data / load_training_batch / create_data_loader: exact round trips for every
# dtype, the epoch order, the loader's length/epochs/resume/shards, and the same batches as
# `vstash batch` for the same arguments.
import io

import numpy as np
import pytest

import vstash
from conftest import rows

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "bool"]


def sample(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
        a.flat[0], a.flat[-1] = info.min, info.max
        return a
    return (rng.standard_normal(shape) * 100).astype(dt)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype(store, name, dtype):
    data = sample(dtype, (23, 2, 3), 1)
    labels = sample(dtype, (23,), 2)
    store.store_training_data(name, data, labels, {"dtype": dtype})
    got, got_labels = store.load_training_batch(name, 100, shuffle=False)
    assert got.dtype == data.dtype and got.shape == data.shape
    assert got.tobytes() == data.tobytes()
    assert got_labels.dtype == labels.dtype and got_labels.tobytes() == labels.tobytes()
    # The returned arrays own their memory through their base (no copy, no leak).
    assert got.flags.c_contiguous and got.base is not None


def test_non_contiguous_and_big_endian_inputs(store, name):
    base = rows(40, 8, np.float64)
    data = base[:, ::2]                      # strided view
    labels = np.arange(40, dtype=">i4")      # big-endian
    store.store_training_data(name, data, labels)
    got, got_labels = store.load_training_batch(name, 40, shuffle=False)
    assert np.array_equal(got, data) and got.dtype == np.float64
    assert np.array_equal(got_labels, labels) and got_labels.dtype == np.dtype("int32")


def test_no_labels_and_dataset_metadata(store, name):
    data = rows(10, 4)
    store.store_training_data(name, data, None, {"source": "unit", "version": 2})
    got, labels = store.load_training_batch(name, 4, shuffle=False, offset=8)
    assert labels is None and np.array_equal(got, data[8:])
    info = [d for d in store.get_statistics()["datasets"] if d["name"] == name][0]
    assert info["rows"] == 10 and info["metadata"]["source"] == "unit"


def test_shuffled_offsets_walk_one_permutation(store, name):
    data = rows(50, 3)
    labels = np.arange(50, dtype=np.int64)
    store.store_training_data(name, data, labels)
    seen = []
    for offset in range(0, 50, 16):
        d, l = store.load_training_batch(name, 16, offset=offset, seed=7)
        assert np.array_equal(d, data[l])
        seen.extend(l.tolist())
    assert sorted(seen) == list(range(50)) and seen != list(range(50))
    again = np.concatenate([store.load_training_batch(name, 16, offset=o, seed=7)[1] for o in range(0, 50, 16)])
    assert again.tolist() == seen
    other_epoch = np.concatenate([store.load_training_batch(name, 16, offset=o, seed=7, epoch=1)[1]
                                  for o in range(0, 50, 16)])
    assert other_epoch.tolist() != seen
    d, l = store.load_training_batch(name, 16, offset=60)
    assert d.shape == (0, 3) and l.shape == (0,)


def test_append_and_conflict(store, name):
    store.store_training_data(name, rows(5, 2), None)
    with pytest.raises(vstash.ConflictError, match="already has 5 rows"):
        store.store_training_data(name, rows(5, 2), None)
    store.store_training_data(name, rows(3, 2, seed=4), None, append=True)
    d, _ = store.load_training_batch(name, 10, shuffle=False)
    assert np.array_equal(d[5:], rows(3, 2, seed=4))
    with pytest.raises(vstash.ConflictError):
        store.store_training_data(name, rows(3, 5), None, append=True)  # another dimension


def test_loader_epochs_resume_and_shards(store, name):
    data = rows(103, 4)
    labels = np.arange(103, dtype=np.int32)
    store.store_training_data(name, data, labels)
    loader = store.create_data_loader(name, batch_size=10, seed=5)
    assert len(loader) == 11
    epoch0 = [l.tolist() for _, l in loader]
    assert sorted(sum(epoch0, [])) == list(range(103))
    assert [l.tolist() for _, l in loader] == epoch0  # iterating again repeats the epoch
    loader.set_epoch(1)
    epoch1 = [l.tolist() for _, l in loader]
    assert epoch1 != epoch0 and sorted(sum(epoch1, [])) == list(range(103))
    # Resume from (epoch 1, batch 4): the same remaining batches.
    it = iter(loader)
    for _ in range(4):
        next(it)
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batch"] == 4
    other = store.create_data_loader(name, batch_size=10, seed=5, num_workers=0)
    other.load_state_dict(state)
    assert [l.tolist() for _, l in other] == epoch1[4:]
    # Workers do not change the sequence; drop_last drops the short batch.
    assert [l.tolist() for _, l in store.create_data_loader(name, 10, True, 0, seed=5, epoch=1)] == epoch1
    assert len(store.create_data_loader(name, 10, seed=5, drop_last=True)) == 10
    # Two ranks partition the epoch.
    shards = [sum([l.tolist() for _, l in store.create_data_loader(name, 7, seed=5, rank=r, world_size=2)], [])
              for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(103)) and not set(shards[0]) & set(shards[1])
    # Batches are (data, labels) of the same rows.
    for d, l in store.create_data_loader(name, 16, shuffle=False):
        assert np.array_equal(d, data[l])


def read_npy_stream(raw):
    f = io.BytesIO(raw)
    out = []
    while f.tell() < len(raw):
        out.append(np.lib.format.read_array(f))
    return out


@pytest.mark.parametrize("shuffle,seed,epoch,rank,world,remainder,drop_last", [
    (True, 3, 1, 1, 2, "uneven", False),
    (False, 0, 0, 0, 1, "uneven", False),
    (True, 9, 2, 2, 3, "pad", True),
])
def test_loader_matches_cli_stream(store, target, name, shuffle, seed, epoch, rank, world, remainder, drop_last):
    data = rows(61, 5, np.float64)
    labels = np.arange(61, dtype=np.int16)
    store.store_training_data(name, data, labels)
    args = ["--dataset", name, "batch", "--size", "8", "--seed", str(seed), "--epoch", str(epoch), "--rank",
            str(rank), "--world-size", str(world), "--remainder", remainder, "--stream", "-o", "-"]
    if shuffle:
        args.append("--shuffle")
    if drop_last:
        args.append("--drop-last")
    arrays = read_npy_stream(target.cli(*args).stdout)
    cli = list(zip(arrays[0::2], arrays[1::2]))
    loader = store.create_data_loader(name, 8, shuffle, 2, seed=seed, epoch=epoch, rank=rank, world_size=world,
                                      remainder=remainder, drop_last=drop_last)
    ours = list(loader)
    assert len(ours) == len(cli) == len(loader) and len(ours) > 0
    for (d, l), (cd, cl) in zip(ours, cli):
        assert d.dtype == cd.dtype and np.array_equal(d, cd) and np.array_equal(l, cl)


@pytest.mark.parametrize("cli_extra,keywords", [
    (["--filter", '{"$label": {"$in": [1, 4, 6]}}'], {"filter": {"$label": {"$in": [1, 4, 6]}}}),
    (["--split", "train=0.7,val=0.3", "--take", "val"], {"split": "train=0.7,val=0.3", "take": "val"}),
    (["--order", "global", "--global-batch-size", "8"], {"order": "global"}),
])
def test_loader_selection_and_order_keywords_match_cli_stream(store, target, name, cli_extra, keywords):
    data = rows(61, 5)
    labels = np.arange(61, dtype=np.int64) % 7
    store.store_training_data(name, data, labels)
    for rank in range(2):
        args = ["--dataset", name, "batch", "--shuffle", "--seed", "4", "--epoch", "1", "--rank", str(rank),
                "--world-size", "2", "--stream", "-o", "-", *cli_extra]
        if "--global-batch-size" not in cli_extra:
            args += ["--size", "8"]
        arrays = read_npy_stream(target.cli(*args).stdout)
        cli = list(zip(arrays[0::2], arrays[1::2]))
        ours = list(store.create_data_loader(name, 8, True, 2, seed=4, epoch=1, rank=rank, world_size=2, **keywords))
        assert len(ours) == len(cli) > 0
        for (d, l), (cd, cl) in zip(ours, cli):
            assert np.array_equal(d, cd) and np.array_equal(l, cl)
        if "filter" in keywords:
            assert set(np.concatenate([l for _, l in ours]).tolist()) <= {1, 4, 6}
    with pytest.raises(vstash.UsageError, match="split: needs take"):
        store.create_data_loader(name, 8, split="a=1")
    with pytest.raises(vstash.UsageError, match="--split: fractions sum to 0.5, not 1"):
        store.create_data_loader(name, 8, split="a=0.5", take="a")
    with pytest.raises(vstash.UsageError, match="order"):
        store.create_data_loader(name, 8, order="elastic")


def test_load_training_batch_matches_cli(store, target, name, tmp_path):
    data = rows(30, 3)
    store.store_training_data(name, data, np.arange(30, dtype=np.int64))
    out = tmp_path / "b.npy"
    target.cli("--dataset", name, "batch", "--size", "7", "--offset", "14", "--shuffle", "--seed", "2", "--epoch",
               "3", "-o", str(out))
    d, l = store.load_training_batch(name, 7, offset=14, seed=2, epoch=3)
    assert np.array_equal(d, np.load(out)) and np.array_equal(l, np.load(tmp_path / "b.labels.npy"))
