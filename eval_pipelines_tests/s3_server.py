"""A real S3-compatible server on 127.0.0.1 for the tests (pytest plugin): moto in server mode.

Why a server and not moto's in-process mock: s3fs talks HTTP through aiobotocore, so only a server on a port
shows the listing pages, ETags, ranged reads and errors the landing code meets on a real bucket.

``s3_server`` (session scope) starts ``ThreadedMotoServer`` on a free port and yields its endpoint URL, with
throw-away credentials in the standard environment variables (AWS_ACCESS_KEY_ID...), which is where the landing
code takes them from. ``s3_bucket`` (function scope) gives each test a fresh bucket and a boto3 client.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Bucket:
    endpoint_url: str
    name: str
    client: Any  # boto3 S3 client

    def url(self, prefix: str = "landing") -> str:
        return f"s3://{self.name}/{prefix}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}}

    def put(self, key: str, body: bytes | str) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    # A plain import: moto[server] is in the dev extra `make test` installs; a skip here would let CI go green
    # with every object-store test unrun (the Label Studio and PostgreSQL servers fail under CI the same way).
    import moto.server as moto_server
    saved = {name: os.environ.get(name) for name in S3_ENV}
    os.environ.update(S3_ENV)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_bucket(s3_server: str) -> S3Bucket:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    name = f"landing-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(s3_server, name, client)
