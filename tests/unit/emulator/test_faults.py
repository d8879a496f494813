"""Streaming, fault knobs, cancellation and the running-slot limit, against a real server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit.emulator.conftest import MODEL, Emulator

Start = Callable[..., Emulator]
BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}


def events(response: httpx.Response) -> list[Any]:
    """Every SSE data payload: JSON decoded, or the literal string "[DONE]"."""
    out: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_stream_with_usage(emulator: Emulator) -> None:
    body = BODY | {"stream": True, "stream_options": {"include_usage": True}, "max_tokens": 5}
    with emulator.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        got = events(response)
    assert got[-1] == "[DONE]"
    first, *tokens, usage = got[:-1]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(tokens) == 5
    assert [c["choices"][0]["finish_reason"] for c in tokens] == [None] * 4 + ["length"]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 5
    assert len({c["id"] for c in got[:-1]}) == 1
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in tokens)
    assert streamed == emulator.chat(max_tokens=5).json()["choices"][0]["message"]["content"]
    assert emulator.wait_stats(lambda s: s["completed"] == 2)["active"] == 0


def test_stream_without_usage_has_no_usage_chunk(emulator: Emulator) -> None:
    with emulator.client.stream("POST", "/v1/chat/completions", json=BODY | {"stream": True}) as response:
        got = events(response)
    assert all(chunk == "[DONE]" or chunk["choices"] for chunk in got)
    assert got[-2]["choices"][0]["finish_reason"] == "stop"


def test_prefill_delay_is_observable(start_emulator: Start) -> None:
    emulator = start_emulator(prefill_ms=300)
    started = time.monotonic()
    assert emulator.chat().status_code == 200
    assert time.monotonic() - started >= 0.3


def test_injected_errors_every_nth_and_by_rate(start_emulator: Start) -> None:
    emulator = start_emulator(error_every=2, error_status=503)
    statuses = [emulator.chat().status_code for _ in range(4)]
    assert statuses == [200, 503, 200, 503]
    error = emulator.chat(stream=True)
    assert error.status_code == 200  # the 5th: not a multiple of 2
    assert (
        emulator.client.post("/emulator/faults", json={"error_every": 0, "error_rate": 1.0}).status_code
        == 200
    )
    failed = emulator.chat()
    assert failed.status_code == 503
    assert failed.json()["error"]["type"] == "ServiceUnavailableError"
    assert emulator.stats()["errors_injected"] == 3


def test_mid_stream_error_event_then_done(start_emulator: Start) -> None:
    emulator = start_emulator(stream_error_after_chunks=3)
    with emulator.client.stream("POST", "/v1/chat/completions", json=BODY | {"stream": True}) as response:
        got = events(response)
    assert len(got) == 5
    assert got[3]["error"]["code"] == 500 and got[3]["error"]["type"] == "InternalServerError"
    assert got[4] == "[DONE]"


def test_drop_after_chunks_breaks_the_connection(start_emulator: Start) -> None:
    emulator = start_emulator(drop_after_chunks=2)
    received: list[Any] = []
    stream = emulator.client.stream("POST", "/v1/chat/completions", json=BODY | {"stream": True})
    with pytest.raises(httpx.RemoteProtocolError), stream as response:
        for line in response.iter_lines():
            received.append(line)
    assert sum(line.startswith("data: {") for line in received) == 2
    assert "data: [DONE]" not in received
    assert emulator.wait_stats(lambda s: s["dropped"] == 1)["completed"] == 0


def test_hang_times_the_client_out_and_counts_the_cancellation(start_emulator: Start) -> None:
    emulator = start_emulator(hang=True)
    with pytest.raises(httpx.ReadTimeout):
        emulator.client.post("/v1/chat/completions", json=BODY, timeout=0.3)
    stats = emulator.wait_stats(lambda s: s["cancelled"] == 1)
    assert stats["last_cancelled"]["phase"] == "hang"
    assert (stats["active"], stats["running"]) == (0, 0)


def test_client_leaving_mid_prefill_cancels_the_request(start_emulator: Start) -> None:
    emulator = start_emulator(prefill_ms=10_000)
    with pytest.raises(httpx.ReadTimeout):
        emulator.client.post("/v1/chat/completions", json=BODY, timeout=0.3)
    left = time.time()
    stats = emulator.wait_stats(lambda s: s["cancelled"] == 1)
    assert stats["last_cancelled"]["phase"] == "prefill"
    assert stats["last_cancelled"]["at"] - left < 1.0
    assert stats["completed"] == 0


def test_client_leaving_mid_stream_cancels_the_request(start_emulator: Start) -> None:
    emulator = start_emulator(per_token_ms=100)
    with emulator.client.stream("POST", "/v1/chat/completions", json=BODY | {"stream": True}) as response:
        lines = response.iter_lines()
        while not next(lines).startswith('data: {"id"'):
            pass
        next(lines)  # at least one token arrived
    left = time.time()
    stats = emulator.wait_stats(lambda s: s["cancelled"] == 1)
    assert stats["last_cancelled"]["phase"] == "decode"
    assert stats["last_cancelled"]["at"] - left < 1.0
    assert (stats["completed"], stats["active"], stats["running"]) == (0, 0, 0)


async def test_requests_beyond_max_num_seqs_wait(start_emulator: Start) -> None:
    emulator = start_emulator(max_num_seqs=1, prefill_ms=400)
    async with httpx.AsyncClient(base_url=emulator.url, timeout=10) as client:
        calls = [asyncio.create_task(client.post("/v1/chat/completions", json=BODY)) for _ in range(2)]
        await asyncio.sleep(0.2)
        stats = (await client.get("/emulator/stats")).json()
        assert (stats["running"], stats["waiting"], stats["active"]) == (1, 1, 2)
        metrics = (await client.get("/metrics")).text
        assert f'vllm:num_requests_waiting{{engine="0",model_name="{MODEL}"}} 1.0' in metrics
        assert 'vllm:kv_cache_usage_perc{engine="0"' in metrics
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200, 200]


def test_faults_change_at_runtime_and_reset_restores_them(start_emulator: Start) -> None:
    emulator = start_emulator(answer_tokens=4)
    assert emulator.chat().json()["usage"]["completion_tokens"] == 4
    changed = emulator.client.post("/emulator/faults", json={"answer_tokens": 6, "prefill_ms": 1})
    assert changed.json()["answer_tokens"] == 6
    assert emulator.client.get("/emulator/faults").json()["prefill_ms"] == 1.0
    assert emulator.chat().json()["usage"]["completion_tokens"] == 6
    refused = emulator.client.post("/emulator/faults", json={"explode": True})
    assert refused.status_code == 400
    assert emulator.client.post("/emulator/faults", json={"error_rate": 5}).status_code == 400
    reset = emulator.client.post("/emulator/reset").json()
    assert (reset["chat_requests"], reset["completed"], reset["faults"]["answer_tokens"]) == (0, 0, 4)
    assert emulator.client.get("/emulator/requests").json()["data"] == []
    assert emulator.app.state.chat_requests == 0  # the same state tests can reach in-process
