# SPDX-License-Identifier: MIT
# vstash.torch: the loader as a torch IterableDataset, sharded by rank/world_size.
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # Debian's python3-torch (install-deps --test)
from vstash.torch import VstashIterableDataset  # noqa: E402


def test_iterable_dataset_shards(store, target, name):
    data = np.random.default_rng(0).standard_normal((90, 6)).astype(np.float32)
    store.store_training_data(name, data, np.arange(90, dtype=np.int64))
    seen = []
    for rank in range(3):
        ds = VstashIterableDataset(target.profile, name, batch_size=8, seed=4, rank=rank, world_size=3,
                                   config_file=target.config)
        ds.set_epoch(2)
        batches = list(torch.utils.data.DataLoader(ds, batch_size=None))
        assert len(batches) == len(ds) == 4
        for x, y in batches:
            assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(data[y.numpy()]))
            seen.extend(y.tolist())
    assert sorted(seen) == list(range(90))
    # The same order as the loader for rank 0.
    ds = VstashIterableDataset(target.profile, name, batch_size=8, seed=4, epoch=2, rank=0, world_size=3,
                               config_file=target.config)
    expect = [l.tolist() for _, l in store.create_data_loader(name, 8, seed=4, epoch=2, rank=0, world_size=3)]
    assert [y.tolist() for _, y in ds] == expect


def test_torch_worker_processes_split_the_shard(store, target, name):
    store.store_training_data(name, np.zeros((64, 2), np.float32), np.arange(64, dtype=np.int64))
    ds = VstashIterableDataset(target.profile, name, batch_size=4, seed=1, rank=1, world_size=2,
                               config_file=target.config)
    expect = sorted(sum([l.tolist() for _, l in store.create_data_loader(name, 4, seed=1, rank=1, world_size=2)], []))
    got = [y for _, y in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)]
    assert sorted(sum([y.tolist() for y in got], [])) == expect
