"""Keys and per-key limits through real gateway processes sharing one real redis-server."""

from __future__ import annotations

import concurrent.futures
import statistics
import subprocess
import sys
import time
from collections import Counter

import httpx
import openai
import pytest

from tests.images import bare_b64, png_bytes
from tests.integration.conftest import create_key, set_faults
from tests.servers import GatewayProcess, RedisServer

BODY = {"image": bare_b64(png_bytes()), "prompt": "hi", "max_tokens": 16}


@pytest.fixture
def two_gateways(redis_url, emulator, tmp_path):
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_KEY_CACHE_SECONDS": "1",
        "GATEWAY_REPLICAS": "2",
        "GATEWAY_LOG_LEVEL": "warning",
        # Exact counts need every check to reach Redis: on a busy machine a call can lag past the
        # 0.1 s default and fall back to local limits (or 50301 for a key never seen) by design.
        "GATEWAY_REDIS_TIMEOUT": "2",
    }
    gateways = [GatewayProcess(env).start(), GatewayProcess(env).start()]
    yield env, gateways
    for gw in gateways:
        gw.stop()


def hammer(gateways, key: str, total: int, body=BODY, workers: int = 16) -> list[httpx.Response]:
    def one(i: int) -> httpx.Response:
        gw = gateways[i % len(gateways)]
        return httpx.post(
            f"{gw.url}/v1/qwen-vl", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
        )

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(total)))


@pytest.mark.slow
def test_rpm_is_global_across_two_processes(two_gateways) -> None:
    env, gateways = two_gateways
    key = create_key(env, "app-rpm", "--rpm", "10")
    responses = hammer(gateways, key, 40)
    codes = Counter(r.status_code for r in responses)
    assert 9 <= codes[200] <= 11, codes
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 40 - codes[200]
    for response in refused:
        assert response.json()["code"] == 42901
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert response.json()["retry_after"] == retry_after
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["ratelimit-limit"] == "10"
    # The SDK sees the same refusal as its typed exception.
    client = openai.OpenAI(base_url=f"{gateways[0].url}/v1", api_key=key, max_retries=0)
    with client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="qwen3-vl-8b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == 42901


@pytest.mark.slow
def test_tpm_is_global_across_two_processes(two_gateways, emulator) -> None:
    env, gateways = two_gateways
    # Each request is charged its estimate up front: text + one image at the pixel budget (1282)
    # + max_tokens (16). With answers slowed so none is reconciled yet, a 6000-token budget
    # admits 4 of 12 concurrent requests, whatever process they reach.
    key = create_key(env, "app-tpm", "--tpm", "6000")
    set_faults(emulator, prefill_ms=1500)
    responses = hammer(gateways, key, 12, workers=12)
    codes = Counter(r.json()["code"] for r in responses)
    assert codes[0] == 4, codes
    assert codes[42902] == 8
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in responses if r.status_code == 429)
    # Afterwards the real usage (far below the estimate) is what stays charged: more fit again.
    set_faults(emulator, prefill_ms=0)
    assert hammer(gateways, key, 1)[0].status_code == 200


@pytest.mark.slow
def test_concurrency_is_global_across_two_processes(two_gateways, emulator) -> None:
    env, gateways = two_gateways
    key = create_key(env, "app-conc", "--concurrency", "2")
    set_faults(emulator, prefill_ms=1500)
    responses = hammer(gateways, key, 6, workers=6)
    codes = Counter(r.json()["code"] for r in responses)
    assert codes[0] == 2, codes
    assert codes[42903] == 4
    # Slots come back once the answers are done.
    set_faults(emulator, prefill_ms=0)
    assert hammer(gateways, key, 2, workers=2)[0].status_code == 200


@pytest.mark.slow
def test_revoked_key_stops_on_both_processes(two_gateways) -> None:
    env, gateways = two_gateways
    key = create_key(env, "app-revoke")
    assert [r.status_code for r in hammer(gateways, key, 2)] == [200, 200]
    subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "revoke", "app-revoke"], env=env, check=True, timeout=30
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        codes = [r.status_code for r in hammer(gateways, key, 2)]
        if codes == [401, 401]:
            break
        time.sleep(0.2)
    assert codes == [401, 401]


def test_missing_and_malformed_keys(make_gateway, emulator) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    assert gw.ask(BODY).json()["code"] == 40101
    bad = gw.ask(BODY, headers={"authorization": "Bearer vlgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAA_000000"})
    assert bad.status_code == 401 and bad.json()["code"] == 40101
    nope = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="nope", max_retries=0)
    with nope, pytest.raises(openai.AuthenticationError) as info:
        nope.models.list()
    assert info.value.body["code"] == 40101


def test_key_limited_to_a_route_gets_403(make_gateway, emulator, tmp_path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    key = create_key({"GATEWAY_DATA_DIR": str(tmp_path)}, "app-only", "--route", "/v1/qwen-vl")
    assert gw.ask(BODY, headers={"authorization": f"Bearer {key}"}).status_code == 200
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    with client, pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="qwen3-vl-8b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == 40301


@pytest.mark.slow
def test_redis_pause_and_restart_during_load(emulator, tmp_path) -> None:
    redis = RedisServer(persist=True).start()  # a restarted Redis still knows the key
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_REDIS_TIMEOUT": "0.1",
        "GATEWAY_KEY_CACHE_SECONDS": "0.5",  # lookups go back to Redis during and after the outage
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gw = GatewayProcess(env).start()
    try:
        key = create_key(env, "app-flaky", "--rpm", "600")
        assert hammer([gw], key, 4)[0].status_code == 200  # the key is now in the local cache
        healthy = hammer([gw], key, 20, workers=4)
        results: list[httpx.Response] = []
        redis.cli("CLIENT", "PAUSE", "1500", "ALL")
        results += hammer([gw], key, 20, workers=4)
        redis.stop()
        results += hammer([gw], key, 20, workers=4)
        # At most one Redis timeout (0.1 s) lands on a request's path before the breaker opens;
        # 0.25 s of slack for a busy CI machine.
        p99 = lambda rs: statistics.quantiles([r.elapsed.total_seconds() for r in rs], n=100)[-1]  # noqa: E731
        assert p99(results) - p99(healthy) <= 0.1 + 0.25, (p99(results), p99(healthy))
        degraded = httpx.get(f"{gw.url}/readyz", timeout=5).json()
        assert httpx.get(f"{gw.url}/readyz?ignore=store", timeout=5).status_code == 200
        redis.start()
        back = time.monotonic()
        while time.monotonic() - back < 5:
            ready = httpx.get(f"{gw.url}/readyz", timeout=5)
            if ready.status_code == 200 and not ready.json()["store"]["degraded"]:
                break
            time.sleep(0.1)
        recovered_after = time.monotonic() - back
        results += hammer([gw], key, 10, workers=4)
        assert not [r for r in results if r.status_code >= 500], [
            r.text for r in results if r.status_code >= 500
        ]
        assert all(r.status_code == 200 for r in results)
        assert degraded["store"]["ok"] is False
        assert recovered_after < 5
        metrics = httpx.get(f"{gw.url}/metrics", timeout=5).text
        assert "gateway_redis_degraded 0.0" in metrics
        assert 'decision="allowed_fallback"' in metrics
    finally:
        gw.stop()
        redis.stop()


@pytest.mark.slow
def test_limits_still_enforced_locally_while_redis_is_down(emulator, tmp_path) -> None:
    redis = RedisServer().start()
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_REPLICAS": "2",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gw = GatewayProcess(env).start()
    try:
        key = create_key(env, "app-local", "--rpm", "10")
        assert hammer([gw], key, 1)[0].status_code == 200
        redis.stop()
        codes = Counter(r.json()["code"] for r in hammer([gw], key, 20, workers=4))
        # Local fallback buckets hold limit / GATEWAY_REPLICAS = 5 per minute in this process and
        # start where Redis left the key (1 of 10 used): 4 of the 5.
        assert codes[0] == 4, codes
        assert codes[42901] == 16
    finally:
        gw.stop()
        redis.stop()
