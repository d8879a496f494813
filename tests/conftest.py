"""Shared fixtures: a real redis-server, the emulator and the gateway as real loopback servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the shared redis-server."""
    redis_server.cli("FLUSHALL")
    return redis_server.url
