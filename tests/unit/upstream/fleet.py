"""Real emulators on loopback that a test can kill and bring back on the same port."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.emulator import EmulatorConfig, create_emulator_app
from gateway.settings import Settings
from tests.servers import ThreadedServer, free_port

MODEL = "qwen3-vl-8b"
CHAT_BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def make_settings(urls: list[str], **overrides: Any) -> Settings:
    """Settings for a pool under test: no .env file, fast health checks and ejections."""
    values: dict[str, Any] = {
        "upstream_urls": urls,
        "upstream_health_interval": 0.2,
        "upstream_eject_seconds": 0.3,
        "upstream_connect_timeout": 0.5,
        "upstream_discovery_interval": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class Fleet:
    """N emulators; ``kill(i)`` stops one, ``revive(i)`` starts a fresh one on the same port."""

    def __init__(self, count: int, **config: Any) -> None:
        self.configs = [dict(config) for _ in range(count)]
        self.servers: list[ThreadedServer | None] = [None] * count
        self.ports = [free_port() for _ in range(count)]
        for index in range(count):
            self.revive(index)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def configure(self, index: int, **config: Any) -> None:
        """Config for the next (re)start of emulator ``index``."""
        self.configs[index].update(config)

    def revive(self, index: int) -> None:
        app = create_emulator_app(EmulatorConfig(**self.configs[index]))
        self.servers[index] = ThreadedServer(app, port=self.ports[index]).start()

    def kill(self, index: int) -> None:
        server = self.servers[index]
        if server is not None:
            server.stop()
            self.servers[index] = None

    def stats(self, index: int) -> dict[str, Any]:
        response = httpx.get(f"{self.urls[index]}/emulator/stats", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_faults(self, index: int, **faults: Any) -> None:
        httpx.post(f"{self.urls[index]}/emulator/faults", json=faults, timeout=5).raise_for_status()

    def close(self) -> None:
        for index in range(len(self.servers)):
            self.kill(index)
