# SPDX-License-Identifier: MIT
"""vstash: training data, checkpoints and vectors in vector databases, from Python.

    import vstash
    store = vstash.open("local")                 # a profile name, or a dict of profile keys
    store.store_training_data("mnist", x, y)
    for data, labels in store.create_data_loader("mnist", batch_size=256):
        ...

The methods are the Classical Backend document's, implemented by the same C++ library as the
`vstash` command (see help(vstash.open) and help(vstash.ClassicalBackend)).
"""
from ._vstash import (  # noqa: F401
    ClassicalBackend,
    ConflictError,
    DataLoader,
    Error,
    NotFoundError,
    QueryResult,
    RetryableError,
    UsageError,
    __version__,
    open,
)

__all__ = [
    "open",
    "ClassicalBackend",
    "DataLoader",
    "QueryResult",
    "Error",
    "UsageError",
    "RetryableError",
    "NotFoundError",
    "ConflictError",
]
