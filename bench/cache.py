"""Cache micro-benchmarks: key derivation, and a cache hit on the embedded and Redis backends.

    .venv/bin/python bench/cache.py [--runs 7] [--n 2000] [--redis-url redis://...]

Without --redis-url a throwaway redis-server is started on a free loopback port. Prints the
median (over runs) of the per-call time. The end-to-end cache hit (1 MB image through the
gateway, intake included) is measured through the gateway by the HTTP bench, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gateway.cache import (
    CachedAnswer,
    KeyMaterial,
    MemoryCacheBackend,
    RedisCacheBackend,
    ResponseCache,
    Usage,
    cache_key,
    fingerprint,
)
from gateway.store.redis import ResilientRedis

ANSWER = CachedAnswer(
    text="A grey tabby cat is curled up on a green sofa next to a knitted blanket. " * 6,
    finish_reason="stop",
    usage=Usage(prompt_tokens=1310, completion_tokens=120, total_tokens=1430),
    model="Qwen/Qwen3-VL-8B-Instruct",
    created=time.time(),
)
MATERIAL = KeyMaterial(
    image_hashes=[hashlib.sha256(b"photo").hexdigest()],
    messages=[
        {"role": "system", "content": "You describe photos for blind users. Be concise and concrete."},
        {"role": "user", "content": "What is in this photo? Mention any text you can read."},
    ],
    model="Qwen/Qwen3-VL-8B-Instruct",
    preset="describe",
    preset_version="3",
    sampling={"max_tokens": 512, "temperature": 0, "top_p": 1.0, "seed": 7, "stop": ["<|im_end|>"]},
)


def median_us(runs: int, n: int, call: Callable[[], object]) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            call()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples) * 1e6


async def amedian_us(runs: int, n: int, call: Callable[[], Awaitable[object]]) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            await call()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples) * 1e6


async def bench_cache(name: str, cache: ResponseCache, runs: int, n: int) -> list[tuple[str, float]]:
    key = cache.key(MATERIAL, owner="bench")
    await cache.store(key, ANSWER)

    async def compute() -> CachedAnswer:
        raise AssertionError("a warm key must not compute")

    raw = cache.flights.value_key(key)
    return [
        (f"{name}: backend.get (raw bytes)", await amedian_us(runs, n, lambda: cache.backend.get(raw))),
        (
            f"{name}: get_or_compute, HIT",
            await amedian_us(runs, n, lambda: cache.get_or_compute(key, compute)),
        ),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--redis-url")
    args = parser.parse_args()

    body = {"image": base64.b64encode(os.urandom(1024 * 1024)).decode(), "prompt": "What is this?"}
    results = [
        (
            "cache_key (chat messages, 1 image)",
            median_us(args.runs, args.n, lambda: cache_key(MATERIAL, scope="k")),
        ),
        ("fingerprint (1 MB image body, parsed)", median_us(args.runs, 20, lambda: fingerprint(body))),
    ]
    memory_backend = MemoryCacheBackend(max_entries=10_000, max_bytes=1 << 28)
    memory = ResponseCache(memory_backend, ttl=600, coalesce_timeout=60)
    results += await bench_cache("embedded", memory, args.runs, args.n)

    server = None
    url = args.redis_url
    if url is None:
        from tests.servers import RedisServer

        server = RedisServer().start()
        url = server.url
    redis = ResilientRedis(url, timeout=1.0, breaker_failures=3, breaker_reset_seconds=1.0)
    try:
        results += await bench_cache(
            "redis", ResponseCache(RedisCacheBackend(redis), ttl=600, coalesce_timeout=60), args.runs, args.n
        )
    finally:
        await redis.aclose()
        if server is not None:
            server.stop()

    print(f"median of {args.runs} runs, per call (python {sys.version.split()[0]})")
    for label, value in results:
        print(f"  {label:<42} {value:9.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
