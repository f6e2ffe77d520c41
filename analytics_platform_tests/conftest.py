"""Shared fixtures: a real S3 endpoint (moto's server on 127.0.0.1) and a scratch data folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-compatible HTTP endpoint, served by moto in this process, on a free loopback port."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the moto server; AWS_ENDPOINT_URL points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session", autouse=True)
def shared_across_workers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every pytest-xdist worker of this session sees (the parent of their own
    temporary folders; pytest keeps the last three sessions'), in ``$TESTS_SHARED_DIR``: where
    apidata.py builds its warehouse once for the session."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    os.environ["TESTS_SHARED_DIR"] = str(shared)
    return shared


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ANALYTICS_DATA_DIR in a scratch folder, with ANALYTICS_RAW_URL left to its default."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    return tmp_path / "data"
