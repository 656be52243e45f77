"""Object stores: where the WAL, the catalog and Parquet files live.

One small interface with two implementations: `file` (a directory on disk; every put is
written to a temporary file, fsynced and renamed, so a reader sees the whole object or
nothing) and `memory` (a dict, for tests and throw-away servers). Paths are
`/`-separated keys such as `node0/wal/00000000001.wal`.
"""

from weir.objectstore.base import ObjectStore
from weir.objectstore.file import FileObjectStore
from weir.objectstore.memory import MemoryObjectStore


def open_store(kind: str, data_dir: str | None = None) -> ObjectStore:
    """Open the object store named by `--object-store`."""
    if kind == "file":
        if data_dir is None:
            raise ValueError("the file object store needs --data-dir")
        return FileObjectStore(data_dir)
    if kind == "memory":
        return MemoryObjectStore()
    raise ValueError(
        f"unsupported object store {kind!r}: Weir supports 'file' and 'memory'"
    )


__all__ = ["FileObjectStore", "MemoryObjectStore", "ObjectStore", "open_store"]
