"""Issue #13: forged keys cost no store lookups after the first few and never evict a valid key.

Forged keys are what an attacker without the server secret can make: signed-shaped keys tagged
with a secret of their own, and legacy-shaped keys (whose CRC32 anyone can compute). Lookups are
counted by the store itself and, on Redis, by the server's own ``INFO commandstats``.
"""

from __future__ import annotations

import pytest
import redis

from gateway.auth import KeyManager, RedisKeyStore, Signer
from gateway.auth.keys import generate_legacy_key
from gateway.auth.throttle import MissBudget
from gateway.errors import Unauthorized, UnknownKeysLimited
from tests.unit.auth.conftest import FakeClock
from tests.unit.store.helpers import resilient, wait_recovered

ATTACKER = Signer(b"the attacker's own secret, not ours")
FORGED = 5_000


def hgetall_calls(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))
    finally:
        client.close()


async def test_forged_signed_keys_never_reach_the_store(store) -> None:
    manager = KeyManager(store, cache_max_entries=50, negative_max_entries=50)
    good, _ = await manager.create("good")
    await manager.authenticate(good)
    before = store.lookups
    for i in range(FORGED):
        with pytest.raises(Unauthorized):
            await manager.authenticate(ATTACKER.generate(), client=f"198.51.100.{i % 200}")
    assert store.lookups == before
    assert len(manager._valid) == 1 and not manager._negative  # nothing cached for a forgery
    await manager.aclose()


async def test_forged_legacy_keys_from_one_address_cost_only_the_first_few_lookups(store) -> None:
    clock = FakeClock()
    manager = KeyManager(store, misses=MissBudget(burst=20, per_minute=10, clock=clock), clock=clock)
    before = store.lookups
    refused = {40101: 0, 42904: 0}
    for _ in range(FORGED):
        try:
            await manager.authenticate(generate_legacy_key(), client="203.0.113.7")
        except (Unauthorized, UnknownKeysLimited) as exc:
            refused[exc.code] += 1
            retry = exc.retry_after
    assert store.lookups - before == 20 and refused == {40101: 20, 42904: FORGED - 20}
    assert retry is not None and 0 < retry <= 6
    # Another address is not punished for this one, and the budget refills with time.
    with pytest.raises(Unauthorized):
        await manager.authenticate(generate_legacy_key(), client="192.0.2.1")
    clock.advance(6)
    with pytest.raises(Unauthorized):
        await manager.authenticate(generate_legacy_key(), client="203.0.113.7")
    assert store.lookups - before == 22


def test_ipv6_callers_share_a_budget_per_64() -> None:
    budget = MissBudget(burst=2, per_minute=1)
    budget.charge("2001:db8:1:2::1")
    budget.charge("2001:db8:1:2:ffff::9")
    assert budget.retry_after("2001:db8:1:2::abcd") is not None
    assert budget.retry_after("2001:db8:1:3::1") is None


async def test_a_flood_of_forged_keys_leaves_the_valid_key_working_through_a_redis_pause(own_redis) -> None:
    client = resilient(own_redis.url)
    clock = FakeClock()
    # Small caches, so any sharing between valid and invalid keys would show as an eviction.
    manager = KeyManager(
        RedisKeyStore(client), cache_seconds=1.0, cache_max_entries=10, negative_max_entries=10, clock=clock
    )
    good, _ = await manager.create("good")
    await manager.authenticate(good, client="10.0.0.1")
    own_redis.cli("CONFIG", "RESETSTAT")
    for i in range(FORGED):
        with pytest.raises(Unauthorized):
            await manager.authenticate(ATTACKER.generate(), client=f"198.51.100.{i % 200}")
    assert hgetall_calls(own_redis.url) == 0
    # Legacy-shaped forgeries from many addresses do cost lookups (one per address budget) ...
    for i in range(500):
        with pytest.raises(Unauthorized):
            await manager.authenticate(generate_legacy_key(), client=f"203.0.{i // 250}.{i % 250}")
    assert hgetall_calls(own_redis.url) == 500
    # ... but they only ever churn the negative cache: the valid key is still known.
    own_redis.cli("CLIENT", "PAUSE", "1500", "ALL")
    clock.advance(5)  # every entry is stale: the store must be asked, and cannot answer
    assert (await manager.authenticate(good, client="10.0.0.1")).name == "good"
    await wait_recovered(client)
    await manager.aclose()
    await client.aclose()


async def test_an_exhausted_budget_never_blocks_a_signed_key(store) -> None:
    """Callers that don't pass an address share one budget: legacy floods must not lock out real keys."""
    operator = KeyManager(store)
    good, _ = await operator.create("good")
    server = KeyManager(store, misses=MissBudget(burst=3, per_minute=1))
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await server.authenticate(generate_legacy_key())
    with pytest.raises(UnknownKeysLimited) as err:
        await server.authenticate(generate_legacy_key())
    assert err.value.code == 42904 and err.value.status == 429
    assert (await server.authenticate(good)).name == "good"  # never seen by this process, still let in
    await operator.aclose()
    await server.aclose()


async def test_resending_the_same_forgeries_after_the_cache_window_costs_no_lookups(store) -> None:
    clock = FakeClock()
    manager = KeyManager(
        store, cache_seconds=2, misses=MissBudget(burst=20, per_minute=10, clock=clock), clock=clock
    )
    forged = [generate_legacy_key() for _ in range(20)]
    before = store.lookups
    for _round in range(3):
        for key in forged:
            with pytest.raises(Unauthorized):  # 40101 each time, never 42904: these are known unknowns
                await manager.authenticate(key, client="203.0.113.7")
        clock.advance(3)  # negative entries go stale; the budget refills by half a lookup
    assert store.lookups - before == 20 + 1  # the first round, then what the refill allowed


def _hostile_keys() -> list[str]:
    real = ATTACKER.generate()
    return [
        "vlgw_" + "A" * 1_000_000,  # a megabyte of key
        real[:20] + "\x00" + real[21:],  # NUL inside
        real.replace(real[10], "\u0410", 1),  # Cyrillic A where a Latin A could be: same length, not ASCII
        real[:-1] + "\uff10",  # full-width digit
        "vlgw_",
        "vlgw_" + "' OR 1=1 --".ljust(28, "x") + "_" + "0" * 12,  # SQL-shaped
        real[:30] + "\r\nX-Injected: 1"[: len(real) - 30],
        "VLGW_" + real[5:],  # case of the prefix
        real + " ",
        "%76%6c%67%77_" + real[5:],  # percent-encoded prefix
    ]


@pytest.mark.parametrize("presented", _hostile_keys(), ids=range(10))
async def test_hostile_key_strings_are_refused_without_touching_the_store(store, presented) -> None:
    """Shapes an attacker tries (overlong, NUL, homoglyphs, injection-shaped): 40101, no store call."""
    from tests.unit.auth.conftest import CountingStore

    spy = CountingStore(store)
    with pytest.raises(Unauthorized) as err:
        await KeyManager(spy, secret="the server's own secret 0123456789").authenticate(presented)
    assert err.value.code == 40101 and presented not in err.value.message
    assert spy.calls == []
