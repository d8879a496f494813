"""Passive outlier ejection, half-open probing and re-admission (fake clock, then real servers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY

from gateway import errors
from gateway.upstream.pool import ReplicaPool
from gateway.upstream.replica import Replica
from tests.servers import answer, run_lifespan, serve
from tests.unit.upstream.fleet import CHAT_BODY, Fleet

URLS = ["http://10.9.0.1:8000", "http://10.9.0.2:8000", "http://10.9.0.3:8000"]
PoolFactory = Callable[..., ReplicaPool]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ejections(name: str) -> float:
    return REGISTRY.get_sample_value("gateway_upstream_ejections_total", {"replica": name}) or 0.0


async def chosen(pool: ReplicaPool, times: int = 30) -> set[str]:
    names = set()
    for _ in range(times):
        async with pool.lease() as replica:
            names.add(replica.name)
    return names


def fail(pool: ReplicaPool, replica: Replica, times: int, outcome: str = "connect_error") -> None:
    for _ in range(times):
        pool.report(replica, outcome)  # type: ignore[arg-type]


async def test_consecutive_failures_eject_for_the_window(pool_factory: PoolFactory) -> None:
    clock = Clock()
    pool = pool_factory(URLS, clock=clock, upstream_eject_failures=3, upstream_eject_seconds=10)
    r0 = pool.replicas[0]
    before = ejections("r0")
    fail(pool, r0, 2)
    assert r0.in_rotation()
    fail(pool, r0, 1, "server_error")
    assert not r0.in_rotation() and ejections("r0") == before + 1
    assert "r0" not in await chosen(pool)
    assert pool.snapshot()["r0"]["ejected"] is True
    assert pool.snapshot()["r0"]["last_error"] == "server_error"
    clock.now += 9.9
    assert "r0" not in await chosen(pool)


async def test_a_success_resets_the_failure_count(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS, upstream_eject_failures=3)
    r0 = pool.replicas[0]
    fail(pool, r0, 2)
    pool.report(r0, "ok")
    fail(pool, r0, 2, "timeout")
    assert r0.in_rotation()


async def test_half_open_lets_one_probe_through_and_readmits_on_success(pool_factory: PoolFactory) -> None:
    clock = Clock()
    pool = pool_factory(URLS[:2], clock=clock, upstream_eject_failures=1, upstream_eject_seconds=10)
    r0, r1 = pool.replicas
    fail(pool, r0, 1)
    clock.now += 10
    r1.inflight = 5  # make r0 attractive: the probe goes there
    async with pool.lease() as probe:
        assert probe is r0 and r0.probing
        for _ in range(10):  # while the probe is out, nobody else gets r0
            async with pool.lease() as other:
                assert other is r1
        pool.report(probe, "ok")
    assert r0.in_rotation() and not r0.probing
    assert r0.consecutive_failures == 0


async def test_failed_probe_ejects_again_for_longer(pool_factory: PoolFactory) -> None:
    clock = Clock()
    pool = pool_factory(
        URLS[:2],
        clock=clock,
        upstream_eject_failures=1,
        upstream_eject_seconds=10,
        upstream_eject_max_seconds=25,
    )
    r0, r1 = pool.replicas
    r1.inflight = 5
    fail(pool, r0, 1)
    assert r0.ejected_until == clock.now + 10
    lengths = []
    for _ in range(3):
        assert r0.ejected_until is not None
        clock.now = r0.ejected_until
        async with pool.lease() as probe:
            assert probe is r0
            pool.report(probe, "connect_error")
        assert r0.ejected_until is not None
        lengths.append(r0.ejected_until - clock.now)
    assert lengths == [20, 25, 25]  # doubling, capped


async def test_unreported_probe_leaves_the_replica_half_open(pool_factory: PoolFactory) -> None:
    clock = Clock()
    pool = pool_factory(URLS[:2], clock=clock, upstream_eject_failures=1, upstream_eject_seconds=1)
    r0, r1 = pool.replicas
    r1.inflight = 5
    fail(pool, r0, 1)
    clock.now += 1
    async with pool.lease() as probe:  # e.g. the client went away mid-request
        assert probe is r0
    async with pool.lease() as again:
        assert again is r0 and r0.probing


async def test_the_last_replica_in_rotation_is_not_ejected(pool_factory: PoolFactory) -> None:
    pool = pool_factory(URLS[:2], upstream_eject_failures=1)
    r0, r1 = pool.replicas
    fail(pool, r0, 1)
    assert not r0.in_rotation()
    fail(pool, r1, 5)
    assert r1.in_rotation()  # ejecting it would turn a partial outage into a total one
    assert await chosen(pool) == {"r1"}


async def test_health_check_readmits_after_the_window_only(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    clock = Clock()
    pool = pool_factory(fleet.urls, clock=clock, upstream_eject_failures=1, upstream_eject_seconds=10)
    r0 = pool.replicas[0]
    fail(pool, r0, 1)
    await pool.check()
    assert r0.healthy and not r0.in_rotation()  # /health is fine, but it is still ejected
    clock.now += 10
    await pool.check()
    assert r0.in_rotation()


async def post(http: httpx.AsyncClient, pool: ReplicaPool, replica: Replica) -> bool:
    try:
        response = await http.post(f"{replica.url}/v1/chat/completions", json=CHAT_BODY)
    except httpx.TransportError:
        pool.report(replica, "connect_error")
        return False
    pool.report(replica, "ok" if response.status_code == 200 else "server_error")
    return response.status_code == 200


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_killed_replica_is_ejected_and_readmitted_when_back(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(3)
    pool = pool_factory(fleet.urls, upstream_eject_failures=2, upstream_eject_seconds=0.3)
    await pool.start()
    assert pool.model == "qwen3-vl-8b" and pool.max_model_len == 32768
    assert all(r.in_rotation() for r in pool.replicas)
    await asyncio.to_thread(fleet.kill, 1)
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(30):
            async with pool.lease() as replica:
                await post(http, pool, replica)
        r1 = pool.replicas[1]
        await wait_until(lambda: not r1.in_rotation(), timeout=3)
        assert pool.snapshot()["r1"]["in_rotation"] is False
        for _ in range(30):
            async with pool.lease() as replica:
                assert replica is not r1
                assert await post(http, pool, replica)
        await asyncio.to_thread(fleet.revive, 1)
        await wait_until(r1.in_rotation, timeout=5)
        async with pool.lease(exclude=frozenset({"r0", "r2"})) as replica:
            assert replica is r1 and await post(http, pool, replica)


async def test_health_check_requires_the_model_to_be_listed(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    pool = pool_factory([*fleet.urls, "http://127.0.0.1:9"], upstream_model="other-model")
    await pool.check()
    snapshot = pool.snapshot()
    assert [s["healthy"] for s in snapshot.values()] == [False, False, False]
    assert "other-model" in snapshot["r0"]["last_error"]
    assert snapshot["r0"]["model_listed"] is False
    with pytest.raises(errors.ServiceUnavailable):
        async with pool.lease():
            pass


async def test_health_check_sends_the_api_key(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(1, api_key="sekrit")
    good = pool_factory(fleet.urls, upstream_api_key="sekrit")
    bad = pool_factory(fleet.urls, upstream_api_key="wrong")
    await good.check()
    await bad.check()
    assert good.ready() and not bad.ready()
    assert "401" in bad.snapshot()["r0"]["last_error"]


class FlakyHealth:
    """A vLLM stand-in whose /health fails the first ``failures`` times (a saturated server dropping
    one health connection), then answers; /v1/models lists model ``m``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.health_hits = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["path"] == "/health":
            self.health_hits += 1
            status = 500 if self.health_hits <= self.failures else 200
            await answer(send, status, [], b"")
            return
        models = b'{"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 4096}]}'
        await answer(send, 200, [(b"content-type", b"application/json")], models)


@pytest.mark.parametrize(("failures", "healthy"), [(1, True), (2, False)])
async def test_one_failed_check_of_a_healthy_replica_is_asked_again(
    pool_factory: PoolFactory, failures: int, healthy: bool
) -> None:
    server = FlakyHealth(failures)
    with serve(server) as running:
        pool = pool_factory([running.url], upstream_model="m")
        await pool.check()
    assert server.health_hits == 2  # checked, then asked again before being taken out
    assert pool.replicas[0].healthy is healthy and pool.ready() is healthy
