"""The content-addressed cache, coalescing and Idempotency-Key through real gateways."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import pytest

from tests.images import bare_b64, data_uri, photo_jpeg
from tests.integration.conftest import create_key, emulator_stats, set_faults
from tests.servers import GatewayProcess, RedisServer

PHOTO = photo_jpeg(800, 600, seed=7)


def body(**extra):
    return {"image": bare_b64(PHOTO), "prompt": "what is this?", "temperature": 0, **extra}


def parallel(fn, n: int, workers: int = 50):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def test_hundred_identical_requests_make_one_upstream_call(gateway, emulator) -> None:
    set_faults(emulator, prefill_ms=800)  # keep the leader busy while the others arrive
    responses = parallel(lambda: httpx.post(f"{gateway.url}/v1/qwen-vl", json=body(), timeout=30), 100)
    assert all(r.status_code == 200 for r in responses)
    texts = {r.json()["text"] for r in responses}
    assert len(texts) == 1
    assert emulator_stats(emulator)["chat_requests"] == 1
    statuses = {r.headers["x-cache"] for r in responses}
    assert statuses <= {"MISS", "COALESCED", "HIT"} and "MISS" in statuses
    assert sum(r.json()["cached"] for r in responses) == 99


def test_same_photo_as_url_data_uri_and_base64_is_one_upstream_call(gateway, emulator, image_origin) -> None:
    origin, files = image_origin
    files.files["/photo.jpg"] = (PHOTO, "image/jpeg")
    first = gateway.ask(body(image=f"{origin.url}/photo.jpg"))
    second = gateway.ask(body(image=data_uri(PHOTO)))
    third = gateway.ask(body())
    assert [r.headers["x-cache"] for r in (first, second, third)] == ["MISS", "HIT", "HIT"]
    assert [r.json()["cached"] for r in (first, second, third)] == [False, True, True]
    assert first.json()["text"] == second.json()["text"] == third.json()["text"]
    assert emulator_stats(emulator)["chat_requests"] == 1


def test_answers_are_not_shared_between_keys(make_gateway, emulator, tmp_path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    keys = [create_key(tmp_path, name) for name in ("tenant-a", "tenant-b")]
    a = gw.ask(body(), headers={"authorization": f"Bearer {keys[0]}"})
    b = gw.ask(body(), headers={"authorization": f"Bearer {keys[1]}"})
    a2 = gw.ask(body(), headers={"authorization": f"Bearer {keys[0]}"})
    assert [a.headers["x-cache"], b.headers["x-cache"], a2.headers["x-cache"]] == ["MISS", "MISS", "HIT"]
    assert emulator_stats(emulator)["chat_requests"] == 2


def test_global_scope_shares_between_keys(make_gateway, emulator, tmp_path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False, cache_scope="global")
    keys = [create_key(tmp_path, name) for name in ("pub-a", "pub-b")]
    gw.ask(body(), headers={"authorization": f"Bearer {keys[0]}"})
    b = gw.ask(body(), headers={"authorization": f"Bearer {keys[1]}"})
    assert b.headers["x-cache"] == "HIT"


def test_app_route_caches_whatever_the_temperature(gateway, emulator) -> None:
    # The guide's request (CONTRACT.md §1): no temperature given, the model's default samples.
    published = {"image": bare_b64(PHOTO), "prompt": "请描述这张图片的内容"}
    assert [gateway.ask(published).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    warm = gateway.ask(body(temperature=0.7))
    again = gateway.ask(body(temperature=0.7))
    assert [warm.headers["x-cache"], again.headers["x-cache"]] == ["MISS", "HIT"]
    assert again.json()["cached"] is True
    assert emulator_stats(emulator)["chat_requests"] == 2


def test_cache_control_opts_out_per_request(gateway, emulator) -> None:
    gateway.ask(body())
    fresh = gateway.ask(body(), headers={"cache-control": "no-cache"})
    assert fresh.headers["x-cache"] == "MISS"
    unstored = gateway.ask(body(prompt="another"), headers={"cache-control": "no-store"})
    assert unstored.headers["x-cache"] == "BYPASS"
    assert gateway.ask(body(prompt="another")).headers["x-cache"] == "MISS"  # no-store stored nothing
    assert emulator_stats(emulator)["chat_requests"] == 4


def test_setting_opts_the_app_route_out_of_sampled_caching(make_gateway, emulator) -> None:
    gw = make_gateway([emulator.url], cache_app_any_temperature=False)
    statuses = [gw.ask(body(temperature=0.7)).headers["x-cache"] for _ in range(2)]
    assert statuses == ["BYPASS", "BYPASS"]  # reproducible requests only, as on the OpenAI route
    assert [gw.ask(body()).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_errors_are_not_cached(gateway, emulator) -> None:
    set_faults(emulator, error_every=1, error_status=500)
    assert gateway.ask(body()).status_code == 502
    set_faults(emulator, error_every=0)
    retry = gateway.ask(body())
    assert retry.status_code == 200 and retry.headers["x-cache"] == "MISS"


def test_stream_is_stored_and_replayed_as_sse(gateway, emulator) -> None:
    with gateway.client.stream("POST", "/v1/qwen-vl", json=body(stream=True)) as response:
        first = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert response.headers["x-cache"] == "MISS"
    with gateway.client.stream("POST", "/v1/qwen-vl", json=body(stream=True)) as response:
        second = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert response.headers["x-cache"] == "HIT"
    text = lambda events: "".join(json.loads(e[6:]).get("text", "") for e in events[:-2])  # noqa: E731
    assert text(first) == text(second)
    assert second[-1] == "data: [DONE]" and json.loads(second[-2][6:])["code"] == 0
    assert emulator_stats(emulator)["chat_requests"] == 1
    # ... and a non-streaming request is served from the same entry.
    assert gateway.ask(body()).json()["text"] == text(first)


def test_truncated_stream_is_not_stored(gateway, emulator) -> None:
    set_faults(emulator, drop_after_chunks=3)
    with gateway.client.stream("POST", "/v1/qwen-vl", json=body(stream=True)) as response:
        list(response.iter_lines())
    set_faults(emulator, drop_after_chunks=None)
    assert gateway.ask(body()).headers["x-cache"] == "MISS"


def test_idempotency_key_replays_at_any_temperature(gateway, emulator) -> None:
    headers = {"idempotency-key": "retry-7f3a"}
    first = gateway.ask(body(temperature=0.9), headers=headers)
    retry = gateway.ask(body(temperature=0.9), headers=headers)
    assert first.json()["text"] == retry.json()["text"]
    assert emulator_stats(emulator)["chat_requests"] == 1
    conflict = gateway.ask(body(temperature=0.9, prompt="another question"), headers=headers)
    assert conflict.status_code == 422
    assert conflict.json()["code"] == 42201


@pytest.mark.slow
def test_coalescing_across_two_processes(redis_url, emulator, tmp_path) -> None:
    # A generous Redis timeout: 100 requests at once on two busy cores can lag an event loop past
    # the 0.1 s default, and a timed-out Redis call bypasses the cache by design (not this test's point).
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_REDIS_TIMEOUT": "2",
        "GATEWAY_AUTH_DISABLED": "true",
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gateways = [GatewayProcess(env).start(), GatewayProcess(env).start()]
    try:
        set_faults(emulator, prefill_ms=1000)
        counter = iter(range(1000))

        def one() -> httpx.Response:
            gw = gateways[next(counter) % 2]
            return httpx.post(f"{gw.url}/v1/qwen-vl", json=body(), timeout=30)

        responses = parallel(one, 100)
        assert all(r.status_code == 200 for r in responses)
        assert len({r.json()["text"] for r in responses}) == 1
        assert emulator_stats(emulator)["chat_requests"] == 1
    finally:
        for gw in gateways:
            gw.stop()


@pytest.mark.slow
def test_redis_down_bypasses_the_cache(emulator, tmp_path) -> None:
    redis = RedisServer().start()
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_AUTH_DISABLED": "true",
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gw = GatewayProcess(env).start()
    try:
        assert httpx.post(f"{gw.url}/v1/qwen-vl", json=body(), timeout=30).headers["x-cache"] == "MISS"
        redis.stop()
        responses = [httpx.post(f"{gw.url}/v1/qwen-vl", json=body(), timeout=30) for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert {r.headers["x-cache"] for r in responses} == {"BYPASS"}
    finally:
        gw.stop()
        redis.stop()
