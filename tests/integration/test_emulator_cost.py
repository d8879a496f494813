"""The emulator's GPU cost model end to end: real servers on loopback, GPU time read from its counters.

Images: ``tests.images.photo_jpeg`` (gradients, shapes and noise, so they decode like photos) at a
phone camera's 4032x3024 (12.2 MP), the size UPSTREAM.md's measurements were made at.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.emulator.app import create_emulator_app
from gateway.emulator.config import EmulatorConfig
from gateway.emulator.cost import prefill_ms
from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import GatewayUnderTest, emulator_stats
from tests.servers import ThreadedServer, serve

MODEL_DEFAULT_MAX_PIXELS = 16_777_216  # a stock vLLM without --mm-processor-kwargs
# One slot and 1,000-token answers (about 5 s of modelled decode each): a second request waits.
ONE_SLOT_LONG_ANSWERS = EmulatorConfig(cost_model="h200", max_num_seqs=1, answer_tokens=1000)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(cost_model="h200", max_pixels=MODEL_DEFAULT_MAX_PIXELS, answer_tokens=8)


@pytest.fixture(scope="module")
def phone_photos() -> list[bytes]:
    return [photo_jpeg(4032, 3024, seed=seed) for seed in (1, 2)]


def metrics(emulator: ThreadedServer) -> dict[str, float]:
    text = httpx.get(f"{emulator.url}/metrics", timeout=5).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            phase = sample.labels.get("phase")
            values[sample.name + (f"/{phase}" if phase else "")] = sample.value
    return values


def chat(emulator: ThreadedServer, image: bytes, **extra: Any) -> httpx.Response:
    content = [
        {"type": "text", "text": "这是什么?"},
        {"type": "image_url", "image_url": {"url": data_uri(image)}},
    ]
    body = {"model": "qwen3-vl-8b", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(f"{emulator.url}/v1/chat/completions", json=body, timeout=30)


@pytest.mark.slow
def test_a_12mp_photo_costs_the_modelled_gpu_far_more_sent_whole_than_through_the_gateway(
    emulator: ThreadedServer, gateway: GatewayUnderTest, phone_photos: list[bytes]
) -> None:
    assert chat(emulator, phone_photos[0]).status_code == 200
    direct = emulator_stats(emulator)["gpu"]
    httpx.post(f"{emulator.url}/emulator/reset", timeout=5).raise_for_status()
    response = gateway.ask({"image": data_uri(phone_photos[1]), "prompt": "这是什么?", "max_tokens": 8})
    assert response.status_code == 200, response.text
    budgeted = emulator_stats(emulator)["gpu"]
    # 4032x3024 at the model's default max_pixels: 11,844 visual tokens; the gateway's budget: 1,230.
    assert (direct["visual_tokens"], budgeted["visual_tokens"]) == (11_844, 1_230)
    assert direct["prefill_seconds"] > 10 * budgeted["prefill_seconds"]
    assert direct["gpu_seconds"] > 5 * budgeted["gpu_seconds"]
    assert metrics(emulator)["emulator_gpu_seconds_total/prefill"] == pytest.approx(
        budgeted["prefill_seconds"]
    )


def test_prefill_time_in_the_counters_is_the_tables(emulator: ThreadedServer) -> None:
    small = photo_jpeg(1024, 1024, seed=3)  # 32 x 32 = 1,024 visual tokens, a point of the sweep
    assert chat(emulator, small).status_code == 200
    gpu = emulator_stats(emulator)["gpu"]
    assert gpu["visual_tokens"] == 1024
    assert gpu["steps"] == 8  # one prefill step (the first token), then one decode step per further token
    assert gpu["prefill_seconds"] == pytest.approx(prefill_ms([1024], 0) / 1000)


def test_a_repeated_image_hits_the_prefix_cache(emulator: ThreadedServer) -> None:
    image = photo_jpeg(1024, 1024, seed=4)
    for _ in range(2):
        assert chat(emulator, image).status_code == 200
    values = metrics(emulator)
    assert (values["vllm:prefix_cache_queries_total"], values["vllm:prefix_cache_hits_total"]) == (2, 1)


def test_streamed_answer_arrives_whole_under_the_model(emulator: ThreadedServer) -> None:
    body = {
        "model": "qwen3-vl-8b",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{emulator.url}/v1/chat/completions", json=body, timeout=30) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    content = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert content[0] == "" and len(content) == 1 + 8  # the role chunk, then every token
    assert chunks[-1]["usage"]["completion_tokens"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("emulator_config", [ONE_SLOT_LONG_ANSWERS])
def test_metrics_report_the_models_batch_queue_and_kv_while_requests_run(
    emulator: ThreadedServer, wait_for: Callable[..., Any]
) -> None:
    # One slot and 1,000-token answers (about 5 s of modelled decode each): the second request waits.
    threads = [threading.Thread(target=chat, args=(emulator, photo_jpeg(640, 480, seed=s))) for s in (5, 6)]
    for thread in threads:
        thread.start()
    try:
        values = wait_for(
            lambda: metrics(emulator),
            lambda v: v["vllm:num_requests_running"] == 1 and v["vllm:num_requests_waiting"] == 1,
        )
        assert 0 < values["vllm:kv_cache_usage_perc"] < 0.01
    finally:
        for thread in threads:
            thread.join(timeout=30)
    values = metrics(emulator)
    assert (values["vllm:num_requests_running"], values["vllm:num_requests_waiting"]) == (0, 0)
    assert values["vllm:kv_cache_usage_perc"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("emulator_config", [ONE_SLOT_LONG_ANSWERS])
def test_a_client_leaving_frees_its_place_in_the_model(
    emulator: ThreadedServer, wait_for: Callable[..., Any]
) -> None:
    runner = threading.Thread(target=chat, args=(emulator, photo_jpeg(640, 480, seed=7)))
    runner.start()
    wait_for(lambda: metrics(emulator), lambda v: v["vllm:num_requests_running"] == 1)
    with pytest.raises(httpx.TimeoutException):
        chat_body = {"model": "qwen3-vl-8b", "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(f"{emulator.url}/v1/chat/completions", json=chat_body, timeout=0.3)
    stats = wait_for(lambda: emulator_stats(emulator), lambda s: s["cancelled"] == 1)
    assert stats["last_cancelled"]["phase"] == "waiting" and stats["waiting"] == 0
    runner.join(timeout=30)


def test_without_the_model_there_is_no_gpu_account() -> None:
    with serve(create_emulator_app(EmulatorConfig())) as plain:
        assert emulator_stats(plain)["gpu"] is None
        assert not any(name.startswith("emulator_gpu") for name in metrics(plain))


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    def wait(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if ok(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"never matched within {timeout}s: {value}")
            time.sleep(0.02)

    return wait
