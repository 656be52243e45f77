"""Object stores: where the WAL, the catalog and Parquet files live.

One small interface with three kinds of implementation: `file` (a directory on disk; every
put is written to a temporary file, fsynced and renamed, so a reader sees the whole object
or nothing), `memory` (a dict, for tests and throw-away servers), and `s3`, `google` and
`azure` (a bucket, through obstore: weir.objectstore.cloud). Paths are `/`-separated keys
such as `node0/wal/00000000001.wal`.
"""

from weir.config import ObjectStoreConfig
from weir.objectstore.base import ObjectStore
from weir.objectstore.file import FileObjectStore
from weir.objectstore.memory import MemoryObjectStore

#: the `--object-store` kinds Weir opens
STORE_KINDS = ("file", "memory", "s3", "google", "azure")


def open_store(kind: str, data_dir: str | None = None,
               options: ObjectStoreConfig | None = None) -> ObjectStore:
    """Open the object store named by `--object-store`; `options` are the flags of the
    cloud stores (a missing --bucket is a ValueError naming it)."""
    if kind == "file":
        if data_dir is None:
            raise ValueError("the file object store needs --data-dir")
        return FileObjectStore(data_dir)
    if kind == "memory":
        return MemoryObjectStore()
    if kind in ("s3", "google", "azure"):
        # imported here: obstore's client is needed only by servers that use it
        from weir.objectstore import cloud

        build = {"s3": cloud.s3_store, "google": cloud.gcs_store,
                 "azure": cloud.azure_store}[kind]
        return build(options or ObjectStoreConfig())
    raise ValueError(f"unsupported object store {kind!r}: Weir supports "
                     + ", ".join(repr(k) for k in STORE_KINDS))


__all__ = ["STORE_KINDS", "FileObjectStore", "MemoryObjectStore", "ObjectStore", "open_store"]
