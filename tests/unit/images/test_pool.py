"""Decode worker processes: a CPU deadline that kills, jobs that outlive a gone client, memory
that comes back, and admission by memory. Real child processes; the slow job is a real 12 MP
photo under a CPU limit set far below what it needs."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.errors import ImageUndecodable, PayloadTooLarge, ServiceUnavailable
from gateway.images import ImageIntake
from gateway.images.containers import Parsed
from gateway.images.normalise import PixelLimits, checked_parse
from gateway.images.pool import DecodePool
from gateway.settings import Settings
from tests.unit.images import factory

LIMITS = PixelLimits(
    pixel_budget=1_310_720, min_pixels=65_536, max_pixels=50_000_000, max_side=20_000, jpeg_quality=90
)
BIG = factory.photo(4032, 3024, seed=3)  # ~60-100 ms of CPU to decode and shrink
SMALL = factory.flat(2000, 1500)


def job(data: bytes) -> tuple[bytes, PixelLimits, Parsed]:
    parsed = checked_parse(data, LIMITS)
    return parsed.data, LIMITS, parsed


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., DecodePool]]:
    pools: list[DecodePool] = []

    def make(**overrides: float) -> DecodePool:
        options: dict[str, float] = {
            "memory_budget": 256 << 20,
            "cpu_limit": 5.0,
            "wall_limit": 30.0,
            "recycle_rss": 1 << 40,
        }
        options.update(overrides)
        pool = DecodePool(1, **options)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()


def deadline(seconds: float = 30.0) -> float:
    return asyncio.get_running_loop().time() + seconds


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_decode_runs_in_a_child_process(make_pool: Callable[..., DecodePool]) -> None:
    pool = make_pool()
    result, digest = await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    assert (result.width, result.height) == (1312, 992) or result.width * result.height <= 1_310_720
    assert len(digest) == 64
    [pid] = pool.pids()
    assert pid != os.getpid() and alive(pid)


async def test_cpu_deadline_kills_the_worker_and_a_fresh_one_serves_next(
    make_pool: Callable[..., DecodePool],
) -> None:
    pool = make_pool()
    await pool.run("k", *job(factory.flat(64, 64)), memory=16 << 20, deadline=deadline())  # warm
    [first] = pool.pids()
    pool.cpu_limit = 0.01  # a tenth of what the 12 MP photo needs
    with pytest.raises(PayloadTooLarge) as caught:
        await pool.run("k", *job(BIG), memory=128 << 20, deadline=deadline())
    assert caught.value.code == 41301 and caught.value.reason == "work"
    assert pool.killed == 1
    for _ in range(100):
        if not alive(first):
            break
        await asyncio.sleep(0.05)
    assert not alive(first)
    pool.cpu_limit = 5.0
    result, _ = await pool.run("k", *job(factory.flat(64, 64)), memory=16 << 20, deadline=deadline())
    assert result.width == 64 and first not in pool.pids()
    assert pool.slots.busy == 0 and pool.memory.free == pool.memory.capacity


async def test_a_gone_client_leaves_the_job_holding_its_slot_and_memory_until_it_ends(
    make_pool: Callable[..., DecodePool],
) -> None:
    pool = make_pool()
    task = asyncio.ensure_future(pool.run("k", *job(BIG), memory=100 << 20, deadline=deadline()))
    while pool.slots.busy == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The decode still runs: its slot and memory stay taken until it ends, then come back.
    assert pool.slots.busy == 1 and pool.memory.free == pool.memory.capacity - (100 << 20)
    for _ in range(600):
        if pool.slots.busy == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.slots.busy == 0 and pool.memory.free == pool.memory.capacity


async def test_a_worker_that_stays_large_is_replaced(make_pool: Callable[..., DecodePool]) -> None:
    pool = make_pool(recycle_rss=1)  # every worker is "too large" after its job
    await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    assert pool.retired == 1
    for _ in range(100):
        if pool.pids():
            break
        await asyncio.sleep(0.05)
    [replacement] = pool.pids()  # started in the background, before the next job needs it
    await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    assert pool.retired == 2 and replacement not in pool.pids()


async def test_a_dead_idle_worker_is_replaced(make_pool: Callable[..., DecodePool]) -> None:
    pool = make_pool()
    await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    while alive(pid):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    result, _ = await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    assert result.width * result.height <= 1_310_720 and pid not in pool.pids()


async def test_no_memory_before_the_deadline_is_503(make_pool: Callable[..., DecodePool]) -> None:
    pool = make_pool(memory_budget=64 << 20)
    await pool.memory.acquire(60 << 20, deadline())  # another request's decode holds it
    with pytest.raises(ServiceUnavailable) as caught:
        await pool.run("k", *job(SMALL), memory=32 << 20, deadline=deadline(0.2))
    assert caught.value.code == 50301 and caught.value.retry_after
    assert pool.slots.busy == 0  # the slot taken while waiting was given back
    pool.memory.release(60 << 20)
    await pool.run("k", *job(SMALL), memory=32 << 20, deadline=deadline())


async def test_intake_refuses_an_image_over_the_per_image_memory_cap(
    make_intake: Callable[..., ImageIntake],
) -> None:
    intake = make_intake(image_decode_max_memory=32 << 20)
    with pytest.raises(PayloadTooLarge) as caught:
        await intake.prepare([base64.b64encode(factory.flat(4000, 3000, "PNG")).decode()])
    assert caught.value.reason == "memory" and "MiB" in caught.value.message
    assert intake.pool.pids() == []


def test_settings_refuse_a_per_image_cap_over_the_budget() -> None:
    with pytest.raises(ValueError, match="GATEWAY_IMAGE_DECODE_MAX_MEMORY"):
        Settings(_env_file=None, image_decode_memory=64 << 20, image_decode_max_memory=128 << 20)  # type: ignore[call-arg]


async def test_a_decoder_that_dies_mid_job_is_a_40002_and_is_replaced(
    make_pool: Callable[..., DecodePool],
) -> None:
    """A decoder crash on a hostile file (a segfault in a C codec) is the file's fault: 40002.
    No file here crashes libjpeg, so the crash is made by killing the worker mid-decode."""
    pool = make_pool()
    await pool.run("k", *job(factory.flat(64, 64)), memory=16 << 20, deadline=deadline())
    [pid] = pool.pids()
    task = asyncio.ensure_future(pool.run("k", *job(BIG), memory=128 << 20, deadline=deadline()))
    await asyncio.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ImageUndecodable) as caught:
        await task
    assert caught.value.code == 40002
    result, _ = await pool.run("k", *job(SMALL), memory=64 << 20, deadline=deadline())
    assert result.width * result.height <= 1_310_720 and pid not in pool.pids()


async def test_never_more_workers_than_its_size(make_pool: Callable[..., DecodePool]) -> None:
    pool = DecodePool(2, memory_budget=256 << 20, cpu_limit=5, wall_limit=30, recycle_rss=1 << 40)
    try:
        seen: set[int] = set()
        jobs = [
            asyncio.ensure_future(pool.run(f"k{i % 3}", *job(SMALL), memory=32 << 20, deadline=deadline()))
            for i in range(8)
        ]
        while not all(j.done() for j in jobs):
            assert len(pool.pids()) <= 2
            seen.update(pool.pids())
            await asyncio.sleep(0.005)
        await asyncio.gather(*jobs)
        assert len(seen) == 2
    finally:
        await pool.aclose()


async def test_intake_answers_41301_when_a_decode_overruns_its_cpu_setting(
    make_intake: Callable[..., ImageIntake],
) -> None:
    intake = make_intake(image_decode_cpu_seconds=0.01)
    with pytest.raises(PayloadTooLarge) as caught:
        await intake.prepare([base64.b64encode(BIG).decode()])
    assert caught.value.reason == "work" and intake.pool.killed == 1


async def test_decoders_go_round_robin_between_keys(make_pool: Callable[..., DecodePool]) -> None:
    """One key queueing heavy decodes does not hold another key's decode behind all of them."""
    pool = make_pool()  # one worker
    finished: list[str] = []

    async def decode(name: str, owner: str) -> None:
        await pool.run(owner, *job(SMALL), memory=32 << 20, deadline=deadline())
        finished.append(name)

    first = asyncio.ensure_future(decode("flood-1", "flood"))
    while pool.slots.busy == 0:
        await asyncio.sleep(0.001)
    queued = [asyncio.ensure_future(decode(f"flood-{i}", "flood")) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    victim = asyncio.ensure_future(decode("victim", "victim"))
    await asyncio.gather(first, victim, *queued)
    # flood-2 had queued before the victim; after it, the victim's turn came before flood-3.
    assert finished.index("victim") < finished.index("flood-3")
