"""Fair intake: one key's slow URLs cannot hold another key's images, and waits count in deadlines."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import pytest

from gateway.errors import ImageFetchFailed
from gateway.images import ImageIntake
from gateway.images.fair import ByteBudget, FairSlots
from tests.unit.images import factory
from tests.unit.images.httpd import Httpd, reply, stall, trickle


def later(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_slots_are_capped_per_owner_and_handed_round_robin() -> None:
    slots = FairSlots(capacity=3, per_owner=2)
    await slots.acquire("a", later(1))
    await slots.acquire("a", later(1))
    a3 = asyncio.ensure_future(slots.acquire("a", later(5)))
    a4 = asyncio.ensure_future(slots.acquire("a", later(5)))
    await asyncio.sleep(0)
    assert not a3.done()  # "a" is at its cap although a slot is free
    await slots.acquire("b", later(1))  # another owner gets the free slot at once
    b2 = asyncio.ensure_future(slots.acquire("b", later(5)))
    c1 = asyncio.ensure_future(slots.acquire("c", later(5)))
    await asyncio.sleep(0)
    slots.release("a")  # "a" is back under its cap and queued first: its turn
    await asyncio.sleep(0)
    assert a3.done() and not b2.done() and not c1.done()
    slots.release("b")
    await asyncio.sleep(0)
    assert b2.done() and not c1.done() and not a4.done()
    slots.release("a")
    await asyncio.sleep(0)
    assert c1.done() and not a4.done()  # "c" had waited longest for its turn
    a4.cancel()
    await asyncio.gather(a4, return_exceptions=True)
    assert slots.busy == 3


async def test_a_timed_out_waiter_gives_nothing_away() -> None:
    slots = FairSlots(capacity=1, per_owner=1)
    await slots.acquire("a", later(1))
    with pytest.raises(TimeoutError):
        await slots.acquire("b", later(0.01))
    slots.release("a")
    assert slots.busy == 0
    await slots.acquire("c", later(1))


async def test_byte_budget_first_come_first_served() -> None:
    budget = ByteBudget(100)
    await budget.acquire(70, later(1))
    big = asyncio.ensure_future(budget.acquire(60, later(5)))
    small = asyncio.ensure_future(budget.acquire(10, later(5)))
    await asyncio.sleep(0)
    assert not big.done() and not small.done()  # the small one does not overtake the big one
    budget.release(70)
    await asyncio.sleep(0)
    assert big.done() and small.done() and budget.free == 30
    with pytest.raises(ValueError):
        await budget.acquire(101, later(1))
    with pytest.raises(TimeoutError):
        await budget.acquire(50, later(0.01))
    assert budget.free == 30


async def test_one_keys_slow_urls_do_not_hold_another_keys_images(
    httpd: Httpd, make_intake: Callable[..., ImageIntake]
) -> None:
    photo = factory.photo(320, 240)
    # 12 drip-fed URLs from "flood": a byte every 50 ms for 2 s each, then the connection ends.
    httpd.routes["/drip.jpg"] = trickle(b"\xff", 0.05, count=40)
    httpd.routes["/photo.jpg"] = reply(body=photo)
    intake = make_intake(
        image_allow_private_urls=True,
        image_allowed_ports=[httpd.port],
        image_max_concurrent=4,
        image_fetch_per_key=2,
        image_max_images=12,
    )
    flood = asyncio.ensure_future(intake.prepare([f"{httpd.origin}/drip.jpg"] * 12, owner="flood"))
    while sum(1 for path, _ in httpd.requests if path == "/drip.jpg") < 2:
        await asyncio.sleep(0.01)
    # Base64 needs no fetch slot; a URL of another key gets one of the slots "flood" cannot take.
    [b64] = await intake.prepare([base64.b64encode(photo).decode()], owner="victim")
    [url] = await intake.prepare([f"{httpd.origin}/photo.jpg"], owner="victim")
    assert b64.sha256 == url.sha256
    assert not flood.done()  # the flood is still dripping: the victim did not wait for it
    assert sum(1 for path, _ in httpd.requests if path == "/drip.jpg") == 2  # capped per key
    flood.cancel()
    await asyncio.gather(flood, return_exceptions=True)


async def test_the_fetch_deadline_includes_the_wait_for_a_slot(
    httpd: Httpd, make_intake: Callable[..., ImageIntake]
) -> None:
    httpd.routes["/silent.jpg"] = stall(3)
    httpd.routes["/photo.jpg"] = reply(body=factory.photo(64, 48))
    intake = make_intake(
        image_allow_private_urls=True,
        image_allowed_ports=[httpd.port],
        image_fetch_per_key=1,
        image_fetch_timeout=0.5,
    )
    with pytest.raises(ImageFetchFailed) as caught:
        await intake.prepare([f"{httpd.origin}/silent.jpg", f"{httpd.origin}/photo.jpg"], owner="k")
    assert caught.value.code == 40004 and caught.value.reason == "timeout"
    # The photo never got a slot: it ran out of time waiting its turn behind the silent URL.
    assert [path for path, _ in httpd.requests] == ["/silent.jpg"]
