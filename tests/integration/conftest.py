"""Whole-system fixtures: the emulator and the gateway as real servers on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.emulator.app import create_emulator_app
from gateway.emulator.config import EmulatorConfig
from gateway.settings import Settings
from tests.servers import StaticFiles, ThreadedServer, serve


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[ThreadedServer]:
    with serve(create_emulator_app(emulator_config)) as server:
        yield server


def gateway_settings(upstream_urls: list[str], data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test gateway: loopback image URLs allowed, no .env file read."""
    values: dict[str, Any] = {
        "upstream_urls": upstream_urls,
        "data_dir": data_dir,
        "image_allow_private_urls": True,
        "auth_disabled": True,
        "log_json": True,
        "upstream_health_interval": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class GatewayUnderTest:
    """A running gateway, its settings, and an httpx client with the test key."""

    def __init__(self, server: ThreadedServer, settings: Settings, key: str | None) -> None:
        self.server = server
        self.url = server.url
        self.settings = settings
        self.key = key
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=server.url, headers=headers, timeout=30)
        self.closers: list[Callable[[], None]] = []  # more clients a test made against this gateway

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def ask(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.client.post("/v1/qwen-vl", json=body, **kwargs)


@pytest.fixture
def make_gateway(
    tmp_path: Path, image_origin: tuple[ThreadedServer, StaticFiles]
) -> Iterator[Callable[..., GatewayUnderTest]]:
    started: list[GatewayUnderTest] = []

    def factory(upstream_urls: list[str], **overrides: Any) -> GatewayUnderTest:
        overrides.setdefault("image_allowed_ports", [80, 443, image_origin[0].port])
        settings = gateway_settings(upstream_urls, tmp_path, **overrides)
        server = ThreadedServer(create_app(settings)).start()
        gw = GatewayUnderTest(server, settings, None)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        for close in gw.closers:
            close()
        gw.client.close()
        gw.server.stop()


@pytest.fixture
def gateway(emulator: ThreadedServer, make_gateway: Callable[..., GatewayUnderTest]) -> GatewayUnderTest:
    return make_gateway([emulator.url])


@pytest.fixture
def image_origin() -> Iterator[tuple[ThreadedServer, StaticFiles]]:
    files = StaticFiles()
    with serve(files) as server:
        yield server, files


def emulator_requests(emulator: ThreadedServer, limit: int = 1) -> list[dict[str, Any]]:
    """The last chat requests the emulator received, newest last."""
    response = httpx.get(f"{emulator.url}/emulator/requests", params={"limit": limit}, timeout=5)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def emulator_stats(emulator: ThreadedServer) -> dict[str, Any]:
    response = httpx.get(f"{emulator.url}/emulator/stats", timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def set_faults(emulator: ThreadedServer, **faults: Any) -> None:
    httpx.post(f"{emulator.url}/emulator/faults", json=faults, timeout=5).raise_for_status()


def create_key(env: dict[str, str] | Path, name: str, *flags: str) -> str:
    """``vlgw keys create`` as an operator runs it; ``env`` is the gateway's environment or data dir."""
    environ = {"GATEWAY_DATA_DIR": str(env)} if isinstance(env, Path) else dict(env)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--name", name, *flags],
        env={**environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    key = result.stdout.strip()
    assert key.startswith("vlgw_"), result
    return key
