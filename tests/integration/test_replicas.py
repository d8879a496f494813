"""Three real emulator replicas behind a ReplicaPool: a replica dies under load, a hot image stays put.

Through the upstream client (its one retry loop), as the gateway calls it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from PIL import Image

from gateway.upstream.client import UpstreamClient
from gateway.upstream.pool import AFFINITY_SLACK_DIVISOR, ReplicaPool
from gateway.upstream.replica import Replica
from tests.unit.upstream.fleet import MODEL, Fleet, make_settings

pytestmark = pytest.mark.slow

FAST = {"prefill_ms": 5.0, "per_token_ms": 1.0}


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    fleet = Fleet(3, **FAST)
    yield fleet
    fleet.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=0.5)) as client:
        yield client


async def started_pool(http: httpx.AsyncClient, urls: list[str], **settings: Any) -> ReplicaPool:
    pool = ReplicaPool(make_settings(urls, **settings), http)
    await pool.start()
    return pool


def chat_body(image: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "what is this?"}]
    if image is not None:
        content.append({"type": "image_url", "image_url": {"url": image}})
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


def post(http: httpx.AsyncClient, body: dict[str, Any]) -> Callable[[Replica], Any]:
    async def attempt(replica: Replica) -> str:
        response = await http.post(f"{replica.url}/v1/chat/completions", json=body)
        response.raise_for_status()
        return replica.name

    return attempt


async def wait_until(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held; fails after ``timeout`` (a generous bound, not a claim)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_replica_killed_under_load_costs_no_request(fleet: Fleet, http: httpx.AsyncClient) -> None:
    eject_failures, concurrency, total = 2, 20, 300
    pool = await started_pool(
        http,
        fleet.urls,
        upstream_eject_failures=eject_failures,
        upstream_eject_seconds=0.5,
        upstream_health_interval=0.2,
        upstream_retries=2,
    )
    session = aiohttp.ClientSession()
    client = UpstreamClient(pool.settings, session, pool)
    victim = pool.replicas[1]
    failures_on_victim = 0
    original_report = pool.report

    def counting_report(replica: Replica, outcome: Any, retry_after: float | None = None) -> None:
        nonlocal failures_on_victim
        # Half-open probes (one request at a time, after each ejection period) are the design
        # working, not requests lost to a replica that looked alive: they are not counted.
        if replica is victim and outcome != "ok" and not victim.probing:
            failures_on_victim += 1
        original_report(replica, outcome, retry_after)

    pool.report = counting_report  # type: ignore[method-assign]
    gate = asyncio.Semaphore(concurrency)
    done = 0
    killed = asyncio.Event()
    served: Counter[str] = Counter()
    errors: list[BaseException] = []

    async def one() -> None:
        nonlocal done
        async with gate:
            try:
                served[(await client.chat(chat_body(), request_id=f"k{done}")).replica] += 1
            except Exception as exc:
                errors.append(exc)
            done += 1
            if done == total // 3 and not killed.is_set():
                killed.set()
                await asyncio.to_thread(fleet.kill, 1)

    await asyncio.gather(*(one() for _ in range(total)))
    assert errors == []
    assert sum(served.values()) == total
    # The load may end before either detector has fired (the kill is a race with the last
    # requests): the passive ejection or the next health check takes it out soon after.
    await wait_until(lambda: not victim.in_rotation(), timeout=5)
    # Ejected after a handful of failures: at most the threshold plus what was already in flight.
    assert failures_on_victim <= eject_failures + concurrency

    await asyncio.to_thread(fleet.revive, 1)
    await wait_until(victim.in_rotation, timeout=10)
    after: Counter[str] = Counter()

    async def more() -> None:
        async with gate:
            after[(await client.chat(chat_body(), request_id="after")).replica] += 1

    await asyncio.gather(*(more() for _ in range(150)))
    assert after["r1"] > 0  # back in rotation, it takes its share of concurrent traffic
    await session.close()
    await pool.aclose()


def photo(seed: int) -> tuple[str, str]:
    """A distinct small JPEG as a data URI, and its sha256 (the affinity key)."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)).save(buffer, "JPEG")
    data = buffer.getvalue()
    return f"data:image/jpeg;base64,{base64.b64encode(data).decode()}", hashlib.sha256(data).hexdigest()


async def test_a_repeated_image_sticks_to_one_replica_within_the_load_bound(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    factor = 1.5
    pool = await started_pool(http, fleet.urls, upstream_affinity_load_factor=factor)
    hot_uri, hot_key = photo(0)
    others = [photo(seed) for seed in range(1, 40)]
    landed: Counter[str] = Counter()
    over_bound: list[tuple[int, list[int]]] = []
    rng = random.Random(5)

    async def request(uri: str | None, key: str | None, hot: bool) -> None:
        async with pool.lease(affinity=key) as replica:
            loads = [r.inflight for r in pool.replicas]
            before = replica.inflight - 1
            mean_before = (sum(loads) - 1) / len(loads)
            slack = max(1.0, pool.settings.upstream_max_inflight / AFFINITY_SLACK_DIVISOR)
            if before >= factor * mean_before + slack:
                over_bound.append((before, loads))
            if hot:
                landed[replica.name] += 1
            await post(http, chat_body(uri))(replica)
            pool.report(replica, "ok")

    async def hot_user() -> None:
        for _ in range(100):
            await request(hot_uri, hot_key, hot=True)

    async def background_user() -> None:
        for _ in range(60):
            if rng.random() < 0.5:
                uri, key = rng.choice(others)
                await request(uri, key, hot=False)
            else:
                await request(None, None, hot=False)

    await asyncio.gather(hot_user(), *(background_user() for _ in range(5)))
    assert sum(landed.values()) == 100
    home, count = landed.most_common(1)[0]
    assert count >= 95, landed
    assert over_bound == []
    # The replica that held the image answered its repeats from its processor cache.
    stats = fleet.stats(int(home[1:]))
    assert stats["mm_cache_hits"] >= count - 1
    await pool.aclose()
