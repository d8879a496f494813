"""Route parity: {app, OpenAI} × {JSON, stream} × {MISS, HIT, COALESCED, idempotent replay}, and in
every cell: feedback accepted, usage counted, limits settled, metrics counted.

Real gateway and emulator on loopback (tests/integration/conftest.py), real httpx clients, a
real API key made by ``vlgw keys create``. The photo is tests/images.py's seeded JPEG.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.images import bare_b64, data_uri, photo_jpeg
from tests.integration.conftest import GatewayUnderTest, create_key, emulator_stats, set_faults
from tests.servers import GatewayProcess

PHOTO = photo_jpeg(640, 480, seed=11)
CONCURRENCY = 3  # the test key's concurrency limit; COALESCED cells send this many at once
_prompts = itertools.count()


@dataclass
class Reply:
    status: int
    cache: str
    request_id: str
    text: str
    events: int  # SSE data events (0 for JSON)


def app_body(prompt: str, stream: bool) -> dict[str, Any]:
    return {"image": bare_b64(PHOTO), "prompt": prompt, "stream": stream}


def openai_body(prompt: str, stream: bool) -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": data_uri(PHOTO)}}, {"type": "text", "text": prompt}]
    body: dict[str, Any] = {"model": "qwen3-vl-8b", "messages": [{"role": "user", "content": content}]}
    # Reproducible (temperature 0): the OpenAI route caches only those by default.
    return {**body, "temperature": 0, "stream": stream, "max_tokens": 64}


def _text_of_event(route: str, data: dict[str, Any]) -> str:
    if route == "app":
        return str(data.get("text", ""))
    choices = data.get("choices") or [{}]
    return str(choices[0].get("delta", {}).get("content") or "")


def send(gw: GatewayUnderTest, route: str, prompt: str, *, stream: bool, headers: dict[str, str]) -> Reply:
    path, body = (
        ("/v1/qwen-vl", app_body(prompt, stream))
        if route == "app"
        else (
            "/v1/chat/completions",
            openai_body(prompt, stream),
        )
    )
    if not stream:
        response = gw.client.post(path, json=body, headers=headers)
        data = response.json()
        text = (
            data.get("text", "")
            if route == "app"
            else data.get("choices", [{}])[0].get("message", {}).get("content", "")
        )
        return Reply(
            response.status_code,
            response.headers.get("x-cache", ""),
            response.headers["x-request-id"],
            text,
            0,
        )
    with gw.client.stream("POST", path, json=body, headers=headers) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        cache, request_id = response.headers.get("x-cache", ""), response.headers["x-request-id"]
    assert events[-1] == "[DONE]", events
    decoded = [json.loads(event) for event in events[:-1]]
    assert not any("error" in d or d.get("code", 0) for d in decoded), decoded
    return Reply(
        response.status_code,
        cache,
        request_id,
        "".join(_text_of_event(route, d) for d in decoded),
        len(events),
    )


def metric(gw: GatewayUnderTest, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry ``labels``, from the gateway's /metrics."""
    text = gw.client.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def today(gw: GatewayUnderTest, key: str) -> dict[str, Any]:
    days = gw.client.get("/v1/usage", params={"days": 1}, headers=auth(key)).json()["days"]
    return dict(days[-1])


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def keyed(make_gateway, emulator, tmp_path) -> tuple[GatewayUnderTest, str]:
    gw = make_gateway([emulator.url], auth_disabled=False)
    return gw, create_key(tmp_path, "parity", "--concurrency", str(CONCURRENCY))


def run_cell(gw: GatewayUnderTest, emulator, key: str, route: str, stream: bool, case: str) -> list[Reply]:
    """The requests of one cell; returns their replies (the one under test last)."""
    prompt = f"parity prompt {next(_prompts)}"
    headers = auth(key)
    if case == "MISS":
        return [send(gw, route, prompt, stream=stream, headers=headers)]
    if case == "HIT":
        return [send(gw, route, prompt, stream=stream, headers=headers) for _ in range(2)]
    if case == "REPLAY":  # no-store: the retry's answer can only come from the Idempotency-Key record
        retry = {**headers, "idempotency-key": f"parity-{prompt}", "cache-control": "no-store"}
        return [send(gw, route, prompt, stream=stream, headers=retry) for _ in range(2)]
    # COALESCED: identical requests while the first is still being answered.
    set_faults(emulator, prefill_ms=300, per_token_ms=40)
    try:
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            futures = []
            for _ in range(CONCURRENCY):
                futures.append(pool.submit(send, gw, route, prompt, stream=stream, headers=headers))
                time.sleep(0.1)
            return sorted((f.result() for f in futures), key=lambda r: r.cache != "MISS")
    finally:
        set_faults(emulator, prefill_ms=0, per_token_ms=0)


EXPECTED = {"MISS": ["MISS"], "HIT": ["MISS", "HIT"], "REPLAY": ["BYPASS", "HIT"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["MISS", "HIT", "COALESCED", "REPLAY"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("route", ["app", "openai"])
def test_parity_cell(keyed, emulator, route: str, stream: bool, case: str) -> None:
    gw, key = keyed
    calls_before = emulator_stats(emulator)["chat_requests"]
    usage_before = today(gw, key)
    cache_metrics = ("hit", "miss", "coalesced", "bypass")
    metrics_before = {name: metric(gw, "gateway_cache_requests_total", result=name) for name in cache_metrics}
    replies = run_cell(gw, emulator, key, route, stream, case)

    # The cache status of every request, and one upstream call per cell.
    statuses = [r.cache for r in replies]
    expected = EXPECTED.get(case, ["MISS"] + ["COALESCED"] * (CONCURRENCY - 1))
    assert statuses == expected
    assert all(r.status == 200 for r in replies)
    assert len({r.text for r in replies}) == 1 and replies[0].text
    assert emulator_stats(emulator)["chat_requests"] - calls_before == 1

    # Feedback accepted for every answer, whoever computed it.
    for reply in replies:
        body = {"request_id": reply.request_id, "verdict": "good"}
        assert eventually(
            lambda body=body: gw.client.post("/v1/feedback", json=body, headers=auth(key)).status_code == 200
        ), reply

    # Usage counted: every request, the tokens once (by the request that spent them), the hits.
    def counted() -> bool:
        now = today(gw, key)
        return now["requests"] - usage_before["requests"] == len(replies)

    assert eventually(counted)
    now = today(gw, key)
    assert now["completion_tokens"] - usage_before["completion_tokens"] > 0
    assert now["cache_hits"] - usage_before["cache_hits"] == statuses.count("HIT")

    # Metrics: the cache outcome of each request is counted, once.
    for name in cache_metrics:
        counted_now = metric(gw, "gateway_cache_requests_total", result=name) - metrics_before[name]
        assert counted_now == statuses.count(name.upper()), name

    # Limits settled: every concurrency slot is free again (all CONCURRENCY may be taken at once).
    set_faults(emulator, prefill_ms=300)
    try:
        probe = f"probe {next(_prompts)}"
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            probes = list(
                pool.map(
                    lambda i: (
                        gw.client.post(
                            "/v1/qwen-vl",
                            json=app_body(f"{probe} {i}", False),
                            headers={**auth(key), "cache-control": "no-store"},
                        ).status_code
                    ),
                    range(CONCURRENCY),
                )
            )
    finally:
        set_faults(emulator, prefill_ms=0)
    assert probes == [200] * CONCURRENCY


# --- what was wrong (issue #12), each with the test that failed before ------------------------


@pytest.mark.parametrize("route", ["app", "openai"])
def test_eight_identical_streams_make_one_upstream_call(gateway, emulator, route: str) -> None:
    set_faults(emulator, per_token_ms=30)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(lambda _: send(gateway, route, "eight at once", stream=True, headers={}), range(8))
        )
    assert emulator_stats(emulator)["chat_requests"] == 1
    assert sorted(r.cache for r in replies) == ["COALESCED"] * 7 + ["MISS"]
    assert len({r.text for r in replies}) == 1


@pytest.mark.parametrize("route", ["app", "openai"])
def test_followers_receive_tokens_before_the_leader_finishes(gateway, emulator, route: str) -> None:
    set_faults(emulator, per_token_ms=60, answer_tokens=30)
    order: list[tuple[str, int]] = []
    lock = threading.Lock()
    leader_started = threading.Event()

    def read(who: str) -> str:
        path, body = (
            ("/v1/qwen-vl", app_body("live", True))
            if route == "app"
            else (
                "/v1/chat/completions",
                openai_body("live", True),
            )
        )
        with gateway.client.stream("POST", path, json=body) as response:
            count = 0
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                if _text_of_event(route, json.loads(line[6:])):
                    with lock:
                        order.append((who, count))
                    count += 1
                    leader_started.set()
            return response.headers["x-cache"]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        leader = pool.submit(read, "leader")
        assert leader_started.wait(10)
        follower = pool.submit(read, "follower")
        statuses = (leader.result(), follower.result())
    assert statuses == ("MISS", "COALESCED")
    assert emulator_stats(emulator)["chat_requests"] == 1
    leader_events = [i for i, (who, _) in enumerate(order) if who == "leader"]
    follower_events = [i for i, (who, _) in enumerate(order) if who == "follower"]
    # The follower's first token came while the leader still had tokens to receive: it was live.
    assert follower_events[0] < leader_events[-1]
    assert len([i for i in follower_events if i < leader_events[-1]]) >= 2


def test_a_retried_stream_joins_the_live_one(gateway, emulator) -> None:
    set_faults(emulator, per_token_ms=40)
    headers = {"idempotency-key": "live-retry", "cache-control": "no-store"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(send, gateway, "app", "retry me", stream=True, headers=headers)
        time.sleep(0.3)
        retry = pool.submit(send, gateway, "app", "retry me", stream=True, headers=headers)
        replies = first.result(), retry.result()
    assert [r.cache for r in replies] == ["BYPASS", "COALESCED"]
    assert replies[0].text == replies[1].text
    assert emulator_stats(emulator)["chat_requests"] == 1


def test_leader_leaving_keeps_the_stream_for_followers(gateway, emulator) -> None:
    set_faults(emulator, per_token_ms=40, answer_tokens=30)
    body = app_body("leader leaves", True)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        gateway.client.stream("POST", "/v1/qwen-vl", json=body) as leader,
    ):
        lines = leader.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        follower = pool.submit(send, gateway, "app", "leader leaves", stream=True, headers={})
        time.sleep(0.4)  # the follower joins; then the leader hangs up mid-stream
    # The leader hung up; the follower still gets the whole answer from the one upstream call.
    reply = follower.result()
    assert reply.cache == "COALESCED" and reply.text
    stats = emulator_stats(emulator)
    assert stats["chat_requests"] == 1 and stats["cancelled"] == 0
    assert send(gateway, "app", "leader leaves", stream=False, headers={}).cache == "HIT"


def test_auth_comes_before_the_body(make_gateway, emulator, tmp_path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    key = create_key(tmp_path, "auth-first")
    for path in ("/v1/qwen-vl", "/v1/chat/completions", "/v1/feedback"):
        for raw in (b"{not json", b"\xff\xfe\x00garbage", b""):
            response = gw.client.post(path, content=raw, headers={"content-type": "application/json"})
            assert response.status_code == 401 and response.json()
            code = response.json().get("code") or response.json()["error"]["code"]
            assert code == 40101, (path, raw)
    # With a key, invalid UTF-8 is the client's mistake (40001), never a 500.
    for path in ("/v1/qwen-vl", "/v1/chat/completions"):
        bad = gw.client.post(path, content=b'{"prompt": "\xff\xfe"}', headers=auth(key))
        assert bad.status_code == 400, bad.text
        body = bad.json()
        assert (body.get("code") or body["error"]["code"]) == 40001


def test_one_token_estimate_for_both_routes(make_gateway, emulator, tmp_path) -> None:
    """The same question costs the same estimate on both routes. A fresh key's first request shows
    the charge exactly: its token bucket is full, so RateLimit-Remaining = tpm - estimate."""
    gw = make_gateway([emulator.url], auth_disabled=False)
    tpm = 1_000_000
    prompt = "What is in this picture? Answer in one short sentence."
    app_key, openai_key = (
        create_key(tmp_path, name, "--tpm", str(tpm)) for name in ("est-app", "est-openai")
    )
    first = gw.client.post(
        "/v1/qwen-vl", json={**app_body(prompt, False), "max_tokens": 64}, headers=auth(app_key)
    )
    second = gw.client.post(
        "/v1/chat/completions",
        json={**openai_body(prompt, False), "max_tokens": 64},
        headers=auth(openai_key),
    )
    assert first.status_code == second.status_code == 200
    assert tpm - int(first.headers["ratelimit-remaining"]) == tpm - int(second.headers["ratelimit-remaining"])


@pytest.mark.slow
def test_a_stream_in_another_process_gets_the_complete_answer(redis_url, emulator, tmp_path) -> None:
    """Across processes the Redis lease hands over the complete answer (not the tokens)."""
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_REDIS_TIMEOUT": "2",
        "GATEWAY_AUTH_DISABLED": "true",
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    first, second = GatewayProcess(env).start(), GatewayProcess(env).start()
    try:
        set_faults(emulator, per_token_ms=40)
        body = app_body("two processes", True)

        def stream_from(gw: GatewayProcess) -> tuple[str, str]:
            with httpx.stream("POST", f"{gw.url}/v1/qwen-vl", json=body, timeout=30) as response:
                events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
                cache = response.headers["x-cache"]
            text = "".join(json.loads(e).get("text", "") for e in events[:-1])
            return cache, text

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            leader = pool.submit(stream_from, first)
            time.sleep(0.4)
            follower = pool.submit(stream_from, second)
            (lead_cache, lead_text), (follow_cache, follow_text) = leader.result(), follower.result()
        assert (lead_cache, follow_cache) == ("MISS", "COALESCED")
        assert lead_text == follow_text and lead_text
        assert emulator_stats(emulator)["chat_requests"] == 1
    finally:
        first.stop()
        second.stop()


def test_a_keys_model_allow_list_holds_on_both_routes(make_gateway, emulator, tmp_path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    other = create_key(tmp_path, "other-model", "--models", "qwen3-vl-32b")
    served = create_key(tmp_path, "served-model", "--models", "qwen3-vl-8b")
    app = gw.client.post("/v1/qwen-vl", json=app_body("allowed?", False), headers=auth(other))
    chat = gw.client.post("/v1/chat/completions", json=openai_body("allowed?", False), headers=auth(other))
    assert (app.status_code, app.json()["code"]) == (403, 40301)
    assert (chat.status_code, chat.json()["error"]["code"]) == (403, 40301)
    assert emulator_stats(emulator)["chat_requests"] == 0
    assert (
        gw.client.post("/v1/qwen-vl", json=app_body("allowed?", False), headers=auth(served)).status_code
        == 200
    )
