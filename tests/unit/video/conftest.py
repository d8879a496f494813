"""Fixtures for video intake tests: an intake factory, and the image tests' loopback servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.settings import Settings
from gateway.video import VideoIntake
from tests.unit.images.conftest import FakeDNS, canary, httpd

__all__ = ["canary", "httpd"]  # fixtures shared with the image tests


@pytest.fixture
async def make_intake() -> AsyncIterator[Callable[..., VideoIntake]]:
    made: list[VideoIntake] = []

    def make(
        *, resolver: Any = None, http: Any = None, executor: Any = None, **overrides: Any
    ) -> VideoIntake:
        intake = VideoIntake(
            Settings(**overrides), resolver=resolver or FakeDNS(), http=http, executor=executor
        )
        made.append(intake)
        return intake

    yield make
    for intake in made:
        await intake.aclose()
