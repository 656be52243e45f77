"""The stores the cluster tests run on: Weir's own file and memory stores (a fresh one per
test), and a store over a real S3 server (moto) for the tests that ask for `s3_store`."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.s3 import S3Server, moto_s3  # noqa: F401 - session fixture
from weir.config import ObjectStoreConfig
from weir.objectstore import ObjectStore, open_store


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return open_store(request.param, str(tmp_path / "bucket"))


@pytest.fixture
def s3_store(moto_s3: S3Server) -> ObjectStore:  # noqa: F811 - the fixture imported above
    return open_store("s3", None, ObjectStoreConfig(
        bucket=moto_s3.new_bucket(), aws_endpoint=moto_s3.endpoint, aws_allow_http=True,
        aws_access_key_id=moto_s3.access_key, aws_secret_access_key=moto_s3.secret_key))
