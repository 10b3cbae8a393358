"""Fixtures shared by every test package: a real Redis for the fleet's tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from framework.testing import redis_server

_FLUSH_S = 5.0


@pytest.fixture(scope="session")
def redis_service() -> Iterator[str]:
    """One ``redis-server`` for the whole run, started by the first test that asks."""
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_service: str) -> str:
    """The run's Redis, emptied for this test (tests run one at a time)."""
    address = urlsplit(redis_service)
    with socket.create_connection((address.hostname, address.port), timeout=_FLUSH_S) as link:
        link.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        answer = link.recv(64)
    assert answer == b"+OK\r\n", f"redis-server refused FLUSHALL: {answer!r}"
    return redis_service
