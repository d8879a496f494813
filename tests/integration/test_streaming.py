"""Streaming on the app route: SSE shape, disconnects, upstream failures, deadlines, keep-alives."""

from __future__ import annotations

import json
import time

import httpx

from tests.images import bare_b64, png_bytes
from tests.integration.conftest import emulator_stats, set_faults

BODY = {"image": bare_b64(png_bytes()), "prompt": "describe", "stream": True}


def _events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_app_stream_shape(gateway) -> None:
    with gateway.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-request-id"]
        events = _events(response)
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["code"] == 0
    assert final["request_id"] == request_id
    assert final["usage"]["completion_tokens"] > 0
    assert final["finish_reason"] in ("stop", "length")
    deltas = [json.loads(e)["text"] for e in events[:-2]]
    assert len(deltas) > 1
    # The same request without streaming gives the same text (the emulator is deterministic).
    whole = gateway.ask({**BODY, "stream": False}).json()
    assert "".join(deltas) == whole["text"]
    assert final["usage"] == whole["usage"]


def test_client_disconnect_cancels_upstream_within_a_second(gateway, emulator) -> None:
    set_faults(emulator, per_token_ms=200, answer_tokens=200)
    with gateway.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert "text" in first
        hung_up = time.monotonic()
    # Leaving the block closed our connection mid-stream.
    deadline = hung_up + 1.0
    while time.monotonic() < deadline and emulator_stats(emulator)["cancelled"] == 0:
        time.sleep(0.02)
    stats = emulator_stats(emulator)
    assert stats["cancelled"] == 1, stats
    assert stats["completed"] == 0


def test_upstream_dropping_mid_stream_gives_an_error_event(gateway, emulator) -> None:
    # Tokens 20 ms apart, as a model sends them: chunks and the drop arriving in one read would let
    # aiohttp raise before handing over the buffered chunks (then a 502 before the first byte).
    set_faults(emulator, drop_after_chunks=3, per_token_ms=20)
    with gateway.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        assert response.status_code == 200
        events = _events(response)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])
    assert error["code"] == 50201
    assert error["message"]


def test_stalled_upstream_hits_first_token_deadline(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], upstream_first_token_timeout=0.5, upstream_keepalive_seconds=5)
    set_faults(emulator, prefill_ms=20_000)
    started = time.monotonic()
    response = gw.ask(BODY)
    assert response.status_code == 504
    assert response.json()["code"] == 50401
    assert time.monotonic() - started < 10  # the deadline (0.5 s) fired, not the 20 s prefill


def test_slow_start_gets_keepalives_then_the_answer(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], upstream_first_token_timeout=5, upstream_keepalive_seconds=0.2)
    set_faults(emulator, prefill_ms=900)
    with gw.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        lines = list(response.iter_lines())
    assert ": keep-alive" in lines
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"


def test_keepalive_then_stall_ends_with_timeout_event(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], upstream_first_token_timeout=0.8, upstream_keepalive_seconds=0.2)
    set_faults(emulator, prefill_ms=5000)
    with gw.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        assert response.status_code == 200  # headers went out with the first keep-alive
        events = _events(response)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["code"] == 50401


def test_stream_metrics(gateway) -> None:
    with gateway.client.stream("POST", "/v1/qwen-vl", json=BODY) as response:
        _events(response)
    text = gateway.client.get("/metrics").text
    assert 'gateway_streams_total{outcome="completed"}' in text
    assert "gateway_time_to_first_token_seconds_bucket" in text
