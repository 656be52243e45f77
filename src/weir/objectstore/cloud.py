"""The `s3`, `google` and `azure` object stores, through obstore (the Python binding of
the Rust object_store crate that the reference itself uses).

The three differ only in how their obstore client is built (`s3_store`, `gcs_store`,
`azure_store`); every operation, the error mapping and the pyarrow view are one code path,
which the tests drive against real S3 servers (SeaweedFS and moto). Google Cloud Storage
and Azure are built the same way but not tested against their services.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import obstore
import pyarrow as pa
import pyarrow.fs as pafs
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    InvalidPathError,
    NotFoundError,
    PreconditionError,
)
from obstore.store import AzureStore, GCSStore, S3Store

from weir.config import ObjectStoreConfig
from weir.errors import ObjectStoreUnavailable
from weir.objectstore.base import ObjectStore
from weir.objectstore.slow import SlowRequestWatch

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

    ObStore = S3Store | GCSStore | AzureStore

_T = TypeVar("_T")
#: obstore raises a missing object as the builtin FileNotFoundError, with its own
#: NotFoundError kept for the same case in older releases
_NOT_FOUND = (FileNotFoundError, NotFoundError)


class CloudObjectStore(ObjectStore):
    """Objects in a bucket (or an Azure container), keys as they are in Weir.

    Every request waits for one of `connection_limit` slots, as the reference's
    `--object-store-connection-limit` does. Failures that are not about a missing object
    (connections, credentials, a missing bucket, TLS) raise `ObjectStoreUnavailable`
    naming the store, the operation and the key. A request still waiting after
    `slow_warning_s` (obstore retrying it) is named in the log (`SlowRequestWatch`)."""

    durable = True

    def __init__(self, store: ObStore, url: str, connection_limit: int = 16,
                 slow_warning_s: float = 10.0) -> None:
        self._store = store
        #: where the objects are (`s3://bucket at http://host:port`), for messages
        self.url = url
        self._slots = threading.BoundedSemaphore(max(1, connection_limit))
        self._fs: pafs.FileSystem | None = None
        self.slow = SlowRequestWatch(url, slow_warning_s)

    def __repr__(self) -> str:
        return f"CloudObjectStore({self.url})"

    def _call(self, op: str, path: str, work: Callable[[], _T]) -> _T:
        with self._slots, self.slow.request(op, path):
            try:
                return work()
            except _NOT_FOUND:
                raise FileNotFoundError(f"no object at {path!r} in {self.url}") from None
            except InvalidPathError as e:
                raise ValueError(f"object key {path!r} is not valid: {_first_line(e)}") from e
            except BaseError as e:
                raise self._unavailable(op, path, e) from e

    def _unavailable(self, op: str, path: str, e: BaseException) -> ObjectStoreUnavailable:
        return ObjectStoreUnavailable(
            f"{op} of {path!r} on {self.url} failed: {_first_line(e)}")

    def put(self, path: str, data: bytes) -> None:
        self._call("put", path, lambda: obstore.put(self._store, path, data))

    def put_streamed(self, path: str, write: Callable[[str], None]) -> int:
        # written to a local temporary file, then uploaded from it in parts (obstore's
        # multipart upload of a file): never whole in memory, and, as a multipart upload
        # appears only once completed, still all or nothing to readers
        fd, local = tempfile.mkstemp(suffix=".tmp")
        os.close(fd)
        try:
            write(local)
            size = os.path.getsize(local)
            self._call("put", path, lambda: obstore.put(self._store, path, Path(local)))
            return size
        finally:
            os.unlink(local)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        def create() -> bool:
            try:
                obstore.put(self._store, path, data, mode="create")
            except AlreadyExistsError:
                return False
            return True

        return self._call("put_if_absent", path, create)

    def get(self, path: str) -> bytes:
        return self._call("get", path,
                          lambda: bytes(obstore.get(self._store, path).bytes()))

    def etag(self, path: str) -> str:
        tag = self._call("head", path, lambda: obstore.head(self._store, path))["e_tag"]
        if tag is None:
            raise ObjectStoreUnavailable(f"{self.url} gives no ETag for {path!r}, so it "
                                         "cannot replace an object conditionally")
        return tag

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        def swap() -> bool:
            try:
                obstore.put(self._store, path, data, mode={"e_tag": etag})
            except PreconditionError:
                return False
            except _NOT_FOUND:  # some servers answer 404, not 412, once it is gone
                return False
            return True

        return self._call("put_if_match", path, swap)

    def list(self, prefix: str) -> list[str]:
        # object_store matches prefixes by whole path segments ("a/b" does not find
        # "a/bc"); Weir's stores match plain string prefixes, so list the enclosing
        # folder and filter
        folder = prefix[: prefix.rfind("/") + 1]

        def listing() -> list[str]:
            keys: list[str] = []
            for chunk in obstore.list(self._store, prefix=folder or None):
                keys.extend(meta["path"] for meta in chunk)
            return keys

        return sorted(k for k in self._call("list", prefix, listing) if k.startswith(prefix))

    def delete(self, path: str) -> None:
        def remove() -> None:
            with contextlib.suppress(*_NOT_FOUND):  # S3 does not say; Azure, Google may
                obstore.delete(self._store, path)

        self._call("delete", path, remove)

    def size(self, path: str) -> int:
        return self._call("head", path, lambda: obstore.head(self._store, path))["size"]

    def arrow_filesystem(self) -> pafs.FileSystem:
        # One pyarrow view over the same obstore client, so Parquet reads use the same
        # credentials, TLS settings and retries on all three clouds (pyarrow's own S3,
        # GCS and Azure filesystems each take their settings differently).
        if self._fs is None:
            self._fs = pafs.PyFileSystem(_CloudHandler(self))
        return self._fs

    def open_reader(self, path: str) -> _RangeReader:
        """A seekable file over the object at `path`, read in ranges as it is read."""
        def open_() -> obstore.ReadableFile:
            return obstore.open_reader(self._store, path)

        return _RangeReader(self, path, self._call("open", path, open_))


class _RangeReader:
    """An obstore ReadableFile whose failures are Weir's (FileNotFoundError,
    ObjectStoreUnavailable), for pyarrow.PythonFile."""

    def __init__(self, store: CloudObjectStore, path: str,
                 inner: obstore.ReadableFile) -> None:
        self._store = store
        self._path = path
        self._inner = inner
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        return bytes(self._store._call("read", self._path,
                                       lambda: self._inner.read(size if size >= 0 else None)))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def size(self) -> int:
        return self._inner.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._inner.close()


# pyarrow has no type information (pyproject.toml, [tool.mypy]): its classes are Any
class _CloudHandler(pafs.FileSystemHandler):  # type: ignore[misc]
    """Read-only pyarrow view of a CloudObjectStore, enough for Parquet scans."""

    def __init__(self, store: CloudObjectStore) -> None:
        self.store = store

    def get_type_name(self) -> str:
        return "weir-cloud"

    def equals(self, other: object) -> bool:
        return isinstance(other, _CloudHandler) and other.store is self.store

    def get_file_info(self, paths: Iterable[str]) -> list[pafs.FileInfo]:
        infos = []
        for p in paths:
            try:
                infos.append(pafs.FileInfo(p, pafs.FileType.File,
                                           size=self.store.size(p.lstrip("/"))))
            except FileNotFoundError:
                infos.append(pafs.FileInfo(p, pafs.FileType.NotFound))
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        prefix = selector.base_dir.strip("/")
        prefix = prefix + "/" if prefix else ""
        return [pafs.FileInfo(k, pafs.FileType.File) for k in self.store.list(prefix)]

    def open_input_file(self, path: str) -> pa.PythonFile:
        return pa.PythonFile(self.store.open_reader(path.lstrip("/")), mode="r")

    def open_input_stream(self, path: str) -> pa.PythonFile:
        return self.open_input_file(path)

    def normalize_path(self, path: str) -> str:
        return path

    # The engine never writes through pyarrow; refuse clearly if something tries.
    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise OSError("the weir cloud filesystem is read-only through pyarrow")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _readonly
    delete_file = move = copy_file = open_output_stream = open_append_stream = _readonly


def _first_line(e: BaseException) -> str:
    """obstore's messages carry a multi-line debug dump after the first line."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---- building the clients ------------------------------------------------------------------


def _client_options(o: ObjectStoreConfig, allow_http: bool) -> ClientConfig:
    client: ClientConfig = {}
    if allow_http:
        client["allow_http"] = True
    if o.tls_allow_insecure:
        client["allow_invalid_certificates"] = True
    if o.tls_ca is not None:
        try:
            client["root_certificate"] = o.tls_ca.read_bytes()
        except OSError as e:
            raise ValueError(f"--object-store-tls-ca {o.tls_ca}: {e.strerror or e}") from e
    if o.http2_only:
        client["http2_only"] = True
    return client


def _retry_config(o: ObjectStoreConfig) -> RetryConfig:
    retry: RetryConfig = {}
    if o.max_retries is not None:
        retry["max_retries"] = o.max_retries
    if o.retry_timeout is not None:
        retry["retry_timeout"] = timedelta(seconds=o.retry_timeout)
    return retry


def _bucket(o: ObjectStoreConfig, kind: str) -> str:
    if not o.bucket:
        raise ValueError(f"the {kind} object store needs --bucket")
    return o.bucket


def s3_store(o: ObjectStoreConfig) -> CloudObjectStore:
    """An S3 (or S3-compatible, with `aws_endpoint`) bucket. What is not given comes from
    obstore's reading of the environment (AWS_* variables, instance credentials)."""
    bucket = _bucket(o, "s3")
    config: dict[str, str | bool] = {"region": o.aws_default_region}
    if o.aws_endpoint:
        config["endpoint"] = o.aws_endpoint
    if o.aws_access_key_id:
        config["access_key_id"] = o.aws_access_key_id
    if o.aws_secret_access_key:
        config["secret_access_key"] = o.aws_secret_access_key
    if o.aws_session_token:
        config["session_token"] = o.aws_session_token
    if o.aws_skip_signature:
        config["skip_signature"] = True
    store = S3Store(bucket, config=config,  # type: ignore[arg-type]  # (a plain dict of S3Config's keys)
                    client_options=_client_options(o, o.aws_allow_http),
                    retry_config=_retry_config(o))
    where = f" at {o.aws_endpoint}" if o.aws_endpoint else ""
    return CloudObjectStore(store, f"s3://{bucket}{where}", o.connection_limit,
                            o.slow_warning)


def gcs_store(o: ObjectStoreConfig) -> CloudObjectStore:
    """A Google Cloud Storage bucket (built as the S3 store is; not tested against GCS)."""
    bucket = _bucket(o, "google")
    config: dict[str, str] = {}
    if o.google_service_account:
        config["service_account"] = o.google_service_account
    store = GCSStore(bucket, config=config,  # type: ignore[arg-type]  # (as above)
                     client_options=_client_options(o, False),
                     retry_config=_retry_config(o))
    return CloudObjectStore(store, f"gs://{bucket}", o.connection_limit, o.slow_warning)


def azure_store(o: ObjectStoreConfig) -> CloudObjectStore:
    """An Azure Blob Storage container named by --bucket (built as the S3 store is; not
    tested against Azure)."""
    container = _bucket(o, "azure")
    if not o.azure_storage_account:
        raise ValueError("the azure object store needs --azure-storage-account")
    config: dict[str, str] = {"account_name": o.azure_storage_account}
    if o.azure_storage_access_key:
        config["account_key"] = o.azure_storage_access_key
    if o.azure_endpoint:
        config["endpoint"] = o.azure_endpoint
    store = AzureStore(container, config=config,  # type: ignore[arg-type]  # (as above)
                       client_options=_client_options(o, o.azure_allow_http),
                       retry_config=_retry_config(o))
    return CloudObjectStore(store, f"azure://{o.azure_storage_account}/{container}",
                            o.connection_limit, o.slow_warning)
