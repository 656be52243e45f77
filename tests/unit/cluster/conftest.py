"""The stores the cluster tests run on: Weir's own file and memory stores (a fresh one per
test), and a store over a real S3 server for the tests that ask for `s3_store`: SeaweedFS,
whose conditional writes are atomic (moto's are not: two joiners could both win a claim)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.s3 import S3Server, seaweedfs  # noqa: F401 - session fixture
from weir.config import ObjectStoreConfig
from weir.objectstore import ObjectStore, open_store


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return open_store(request.param, str(tmp_path / "bucket"))


@pytest.fixture
def s3_store(seaweedfs: S3Server) -> ObjectStore:  # noqa: F811 - the fixture imported above
    return open_store("s3", None, ObjectStoreConfig(
        bucket=seaweedfs.new_bucket(), aws_endpoint=seaweedfs.endpoint, aws_allow_http=True,
        aws_access_key_id=seaweedfs.access_key, aws_secret_access_key=seaweedfs.secret_key))
