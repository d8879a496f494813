"""Load scraping from vLLM's /metrics, against the text format and a real emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from gateway.upstream.health import parse_load
from gateway.upstream.pool import ReplicaPool
from tests.unit.upstream.fleet import CHAT_BODY, Fleet

PoolFactory = Callable[..., ReplicaPool]

VLLM_METRICS = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="qwen3-vl-8b"} 3.0
vllm:num_requests_waiting{engine="1",model_name="qwen3-vl-8b"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="qwen3-vl-8b"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="qwen3-vl-8b"} 0.75
"""


def test_parse_load_sums_waiting_and_takes_the_fullest_cache() -> None:
    sample = parse_load(VLLM_METRICS)
    assert sample is not None
    assert (sample.waiting, sample.kv_usage) == (5.0, 0.75)


def test_parse_load_reads_the_old_kv_metric_name() -> None:
    sample = parse_load('vllm:gpu_cache_usage_perc{model_name="m"} 0.5\n')
    assert sample is not None and sample.kv_usage == 0.5


def test_parse_load_without_vllm_metrics_is_none() -> None:
    assert parse_load("process_cpu_seconds_total 3.0\n") is None
    assert parse_load("this is { not prometheus") is None


async def test_scraped_queue_steers_least_outstanding_away(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    """A replica busy with another gateway's requests (invisible in our in-flight count) is avoided."""
    fleet = fleet_factory(2, max_num_seqs=1)
    fleet.set_faults(0, prefill_ms=3000)
    pool = pool_factory(fleet.urls, upstream_scrape_metrics=True, upstream_routing="least_outstanding")
    async with httpx.AsyncClient(timeout=10) as other_gateway:
        busy = [
            asyncio.create_task(other_gateway.post(f"{fleet.urls[0]}/v1/chat/completions", json=CHAT_BODY))
            for _ in range(3)
        ]
        await asyncio.sleep(0.3)
        await pool.check()
        r0 = pool.replicas[0]
        assert r0.waiting >= 1 and r0.scraped_at is not None
        assert pool.snapshot()["r0"]["waiting"] == r0.waiting
        for _ in range(20):
            async with pool.lease() as replica:
                assert replica.name == "r1"
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)
