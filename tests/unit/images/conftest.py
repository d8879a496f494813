"""Fixtures for image intake tests: loopback servers, a canary, intake factories, fake DNS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.images import ImageIntake
from gateway.settings import Settings
from tests.unit.images.httpd import Canary, Httpd


class FakeDNS:
    """An injected resolver: a fixed table of names, counting lookups; unknown names resolve to nothing."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.lookups: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        return list(self.table.get(host, []))


@pytest.fixture
async def httpd() -> AsyncIterator[Httpd]:
    server = await Httpd().start()
    yield server
    await server.stop()


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    listener = await Canary().start()
    yield listener
    await listener.stop()


@pytest.fixture
async def make_intake() -> AsyncIterator[Callable[..., ImageIntake]]:
    made: list[ImageIntake] = []

    def make(*, resolver: Any = None, http: Any = None, **overrides: Any) -> ImageIntake:
        intake = ImageIntake(Settings(**overrides), resolver=resolver or FakeDNS(), http=http)
        made.append(intake)
        return intake

    yield make
    for intake in made:
        await intake.aclose()
