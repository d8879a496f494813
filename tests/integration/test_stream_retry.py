"""Through the gateway: a stream whose replica dies after its headers, before the first token,
is answered whole by another replica on both routes (issue #13), and the client sees one clean
stream, not a 502."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from gateway.emulator import EmulatorConfig, create_emulator_app
from tests.images import bare_b64, png_bytes
from tests.integration.conftest import emulator_stats, set_faults
from tests.servers import ThreadedServer, serve


@pytest.fixture
def two_emulators() -> Iterator[list[ThreadedServer]]:
    with (
        serve(create_emulator_app(EmulatorConfig())) as first,
        serve(create_emulator_app(EmulatorConfig())) as second,
    ):
        yield [first, second]


def events(lines: list[str]) -> list[bytes]:
    return [line[6:].encode() for line in lines if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.mark.parametrize("dropped_after", [0, 1], ids=["after headers", "after the role chunk"])
def test_app_stream_retried_before_the_first_token(two_emulators, make_gateway, dropped_after) -> None:
    set_faults(two_emulators[0], drop_after_chunks=dropped_after)
    gw = make_gateway([e.url for e in two_emulators], upstream_routing="round_robin", cache_enabled=False)
    body = {"image": bare_b64(png_bytes()), "prompt": "hi", "max_tokens": 16, "stream": True}
    for _ in range(4):  # round robin: some start on the dying replica
        with gw.client.stream("POST", "/v1/qwen-vl", json=body) as response:
            assert response.status_code == 200
            payloads = [msgspec.json.decode(p) for p in events(list(response.iter_lines()))]
        assert payloads[-1]["code"] == 0 and payloads[-1]["finish_reason"] in ("stop", "length")
        assert "".join(p.get("text", "") for p in payloads)
    assert emulator_stats(two_emulators[0])["dropped"] >= 1


def test_openai_stream_retried_before_the_first_token(two_emulators, make_gateway) -> None:
    set_faults(two_emulators[0], drop_after_chunks=0)
    gw = make_gateway([e.url for e in two_emulators], upstream_routing="round_robin", cache_enabled=False)
    body = {
        "model": "qwen3-vl-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": True,
    }
    for _ in range(4):
        with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            chunks = [msgspec.json.decode(p) for p in events(list(response.iter_lines()))]
        assert not any("error" in chunk for chunk in chunks)
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in ("stop", "length")
    assert emulator_stats(two_emulators[0])["dropped"] >= 1
