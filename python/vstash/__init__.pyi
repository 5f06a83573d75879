# SPDX-License-Identifier: MIT
"""Type stub of the vstash module (the extension vstash._vstash re-exported by the package)."""
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str

Config = Union[str, Mapping[str, Any], None]
ArrayLike = Union[np.ndarray, Sequence[Any]]


class Error(Exception):
    """Base class of every vstash error; exit_code is the CLI's exit status for it (1)."""
    exit_code: int


class UsageError(Error):
    """Bad input: an argument, array, profile key, filter or dimension (exit code 2)."""


class RetryableError(Error):
    """Server unreachable, timeout or rate limit: the same call may succeed later (exit code 3)."""


class NotFoundError(Error):
    """Dataset, id, checkpoint or profile does not exist (exit code 4)."""


class ConflictError(Error):
    """Already exists, or an incompatible dataset spec (exit code 5)."""


class QueryResult:
    """One nearest neighbour, best first in query()'s list."""
    id: str
    score: float
    """Cosine similarity or dot product (higher is closer), or L2 distance (lower is closer)."""
    index: int
    metadata: Optional[Dict[str, Any]]
    values: Optional[np.ndarray]
    """The row's vector as float32, only with include_values=True."""


class DataLoader:
    """Batches (data, labels) of one epoch, or of one rank's shard, prefetched by C++ worker threads
    into a bounded queue. The sequence equals `vstash batch --stream` with the same arguments.
    Iterating again starts the epoch over; Ctrl-C while waiting raises KeyboardInterrupt."""
    epoch: int

    def __iter__(self) -> "DataLoader": ...
    def __next__(self) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
    def __len__(self) -> int:
        """Batches in the epoch's shard (after drop_last)."""
    def set_epoch(self, epoch: int) -> None:
        """Use this epoch's order (a new shuffle per epoch) from the next iteration on."""
    def state_dict(self) -> Dict[str, Any]:
        """{'epoch', 'batch', 'dataset', 'batch_size', 'shuffle', 'seed', 'rank', 'world_size'}."""
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: the next iteration starts at state['batch'] of state['epoch']."""


class ClassicalBackend:
    """An opened store (local, pgvector, redis, qdrant or pinecone) with the Classical Backend methods.
    Create it with vstash.open(). Calls release the GIL while the C++ library works."""
    kind: str
    dataset: str
    """The dataset the vector methods use when not given dataset=."""
    config: Dict[str, Any]
    """The profile's keys, secrets shown as '***'."""

    def store_training_data(self, dataset_id: str, data: ArrayLike, labels: Optional[ArrayLike],
                            metadata: Optional[Dict[str, Any]] = None, *, ids: Optional[Sequence[str]] = None,
                            metric: str = "", append: bool = False, build_index: bool = False) -> None:
        """Store the rows of data (n, ...) with labels (n, ...) or None, in their dtypes and shapes;
        metadata is the dataset's. Ids default to row numbers. ConflictError for a non-empty dataset
        unless append=True; UsageError for NaN/Inf rows. build_index=True also builds the store's
        search index as `vstash ingest` does (the local HNSW graph, pgvector's index)."""
    def load_training_batch(self, dataset_id: str, batch_size: int, shuffle: bool = True, offset: int = 0, *,
                            seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1,
                            remainder: str = "uneven") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(data, labels): up to batch_size rows from position offset of the epoch order (a permutation
        seeded by seed and epoch when shuffled). Past the end both are empty."""
    def save_checkpoint(self, model_id: str, epoch: int, parameters: Union[ArrayLike, Mapping[str, ArrayLike]],
                        metrics: Dict[str, float], metadata: Optional[Dict[str, Any]] = None, *,
                        overwrite: bool = False, keep: int = -1, keep_best: str = "") -> str:
        """Save parameters (an array, or named arrays such as optimizer state) and return 'MODEL@EPOCH'.
        ConflictError if the epoch exists unless overwrite=True; keep / keep_best='loss:min' prune after."""
    def load_checkpoint(self, checkpoint_path: str) -> Dict[str, Any]:
        """'MODEL@EPOCH' or 'MODEL@latest' -> {'parameters', 'arrays', 'epoch', 'metrics', 'metadata',
        'model', 'path', 'created_at'}."""
    def list_checkpoints(self, model_id: str = "") -> List[Dict[str, Any]]:
        """Checkpoints of a model (all if empty), like `vstash checkpoint list --json`."""
    def create_data_loader(self, dataset_id: str, batch_size: int = 32, shuffle: bool = True,
                           num_workers: int = 4, *, seed: int = 0, epoch: int = 0, rank: int = 0,
                           world_size: int = 1, drop_last: bool = False, remainder: str = "uneven",
                           prefetch: int = 0, filter: Union[None, str, Dict[str, Any]] = None,
                           split: str = "", take: str = "", order: str = "strided") -> DataLoader:
        """A DataLoader over one epoch (the rank's shard); remainder 'uneven', 'drop' or 'pad'.
        filter ($label: the row's label) and split='train=0.8,val=0.2' + take='train' restrict the
        epoch to those rows, as `vstash batch --filter/--split/--take`; order='global' makes
        batch_size the global batch size, the same for any world_size (`batch --order global`)."""
    def insert_vector(self, id: str, vector: ArrayLike, metadata: Optional[Dict[str, Any]] = None, *,
                      dataset: str = "", upsert: bool = False) -> None:
        """Insert one vector; the dataset is created from it if missing. ConflictError for an existing id
        unless upsert=True."""
    def batch_insert(self, ids: Sequence[str], vectors: Union[ArrayLike, Sequence[ArrayLike]],
                     metadata: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *, dataset: str = "",
                     labels: Optional[ArrayLike] = None) -> None:
        """Upsert many vectors (a list of arrays or one (n, ...) array) with per-row metadata."""
    def query(self, query_vector: ArrayLike, top_k: int = 10, filter: Union[Dict[str, Any], str, None] = None, *,
              dataset: str = "", include_values: bool = False, include_metadata: bool = True) -> List[QueryResult]:
        """The top_k nearest rows, best first; filter is the README's metadata filter language."""
    def update_vector(self, id: str, vector: Optional[ArrayLike], metadata: Optional[Dict[str, Any]] = None, *,
                      dataset: str = "") -> None:
        """Replace the vector (None keeps it) and/or merge metadata keys (None values delete keys)."""
    def delete_vector(self, id: str, *, dataset: str = "", ignore_missing: bool = False) -> None:
        """Delete a row by id; NotFoundError if missing unless ignore_missing=True."""
    def get_statistics(self) -> Dict[str, Any]:
        """{'backend', 'location', 'store_bytes', 'datasets', 'checkpoints_per_model', 'extra'}."""


def open(config: Config = None, *, config_file: str = "", dataset: str = "",
         read_only: bool = False) -> ClassicalBackend:
    """Open a store: a profile name (looked up like the CLI's --profile), None for the default profile,
    or a dict with a YAML profile's keys, e.g. {'type': 'pinecone', 'api_key': KEY,
    'environment': 'us-east-1', 'index_name': 'train', 'dimension': 768, 'metric': 'cosine'}.
    Secrets never appear in errors or repr()."""
