# SPDX-License-Identifier: MIT
"""vstash datasets as torch.utils.data.IterableDataset (needs torch).

    from vstash.torch import VstashIterableDataset
    ds = VstashIterableDataset("prod", "mnist", batch_size=256, seed=1)   # profile name or dict
    for epoch in range(10):
        ds.set_epoch(epoch)
        for data, labels in torch.utils.data.DataLoader(ds, batch_size=None):
            ...

Each item is one batch (data, labels) as tensors (labels None without labels), so wrap it with
batch_size=None. Rows are sharded by rank/world_size (default: torch.distributed's, else the
RANK/WORLD_SIZE environment variables, else 0/1), and again over the DataLoader's worker
processes, each of which opens its own connection.
"""
import os

import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import open as _open


def _distributed():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class VstashIterableDataset(IterableDataset):
    """One epoch of a vstash dataset, batch by batch, as the C++ DataLoader yields it."""

    def __init__(self, config, dataset_id, batch_size=32, shuffle=True, num_workers=2, *, seed=0, epoch=0,
                 rank=None, world_size=None, drop_last=False, remainder="uneven", config_file=""):
        super().__init__()
        default_rank, default_world = _distributed()
        self.config = config
        self.config_file = config_file
        self.dataset_id = dataset_id
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.seed = seed
        self.epoch = epoch
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.drop_last = drop_last
        self.remainder = remainder

    def set_epoch(self, epoch):
        """A new shuffle for each epoch (the same on every rank), like DistributedSampler."""
        self.epoch = epoch

    def _loader(self, store):
        rank, world = self.rank, self.world_size
        info = get_worker_info()
        if info is not None and info.num_workers > 1:
            # Shards are strided over the epoch order (order[rank::world]), so the workers'
            # shards order[rank + world * id :: world * num_workers] split exactly this rank's rows.
            rank, world = rank + world * info.id, world * info.num_workers
        return store.create_data_loader(self.dataset_id, self.batch_size, self.shuffle, self.num_workers,
                                              seed=self.seed, epoch=self.epoch, rank=rank, world_size=world,
                                              drop_last=self.drop_last, remainder=self.remainder)

    def _open(self):
        return _open(self.config, config_file=self.config_file, read_only=True)

    def __len__(self):
        """Batches of this rank's shard (a short-lived connection: nothing is kept open, so a
        DataLoader may fork its workers afterwards)."""
        return len(self._loader(self._open()))

    def __iter__(self):
        # A connection per iteration and process: never one inherited through fork.
        store = self._open()
        for data, labels in self._loader(store):
            yield torch.from_numpy(data), None if labels is None else torch.from_numpy(labels)
