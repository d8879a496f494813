"""A stream whose replica fails before its first token is retried on another replica (issue #13).

vLLM sends its 200 and headers before the engine runs, so "answered" does not mean "working":
the emulator's ``drop_after_chunks`` fault closes the connection after N chunks without
``[DONE]`` (0: right after the headers; 1: after the empty role chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from gateway import errors
from gateway.upstream.client import UpstreamClient
from tests.unit.upstream.fleet import CHAT_BODY, Fleet

STREAM_BODY = {**CHAT_BODY, "stream": True, "max_tokens": 8}


async def read_all(client: UpstreamClient) -> tuple[str, str, list[bytes]]:
    stream = await client.open_stream(STREAM_BODY, request_id="s")
    payloads: list[bytes] = []
    try:
        async for payload in stream.events():
            if payload is not None:
                payloads.append(payload)
    finally:
        await stream.aclose()
    text = "".join(
        choice.get("delta", {}).get("content") or ""
        for chunk in map(msgspec.json.decode, payloads)
        for choice in chunk.get("choices", [])
    )
    return text, stream.replica, payloads


@pytest.mark.parametrize("dropped_after", [0, 1], ids=["after headers", "after the role chunk"])
async def test_a_replica_dying_before_the_first_token_is_retried_elsewhere(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet], dropped_after: int
) -> None:
    fleet = fleet_factory(2)
    fleet.set_faults(0, drop_after_chunks=dropped_after)
    healthy = await read_all(client_factory([fleet.urls[1]]))
    client = client_factory(fleet.urls, upstream_routing="round_robin", upstream_retries=1)
    for _ in range(4):  # round robin: some of these start on the dying replica
        text, replica, payloads = await read_all(client)
        assert text == healthy[0] and replica == "r1"
        roles = [p for p in payloads if b'"role"' in p]
        assert len(roles) == 1  # the failed attempt's role chunk was held back, not sent twice
    assert fleet.stats(0)["dropped"] >= 1


async def test_a_stream_that_sent_text_is_not_retried(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    for index in (0, 1):
        fleet.set_faults(index, drop_after_chunks=3)  # role chunk, two tokens, then gone
    client = client_factory(fleet.urls, upstream_retries=1)
    with pytest.raises(errors.UpstreamStreamBroken):
        await read_all(client)
    assert fleet.stats(0)["dropped"] + fleet.stats(1)["dropped"] == 1


async def test_retries_are_bounded(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(3)
    for index in range(3):
        fleet.set_faults(index, drop_after_chunks=0)
    client = client_factory(fleet.urls, upstream_retries=1)
    with pytest.raises(errors.UpstreamStreamBroken):
        await read_all(client)
    dropped = sum(fleet.stats(index)["dropped"] for index in range(3))
    assert dropped == 2  # the first attempt and one retry
