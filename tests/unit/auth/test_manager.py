"""KeyManager: create, authenticate (cached), revoke across replicas, store outages."""

from __future__ import annotations

import hmac

import pytest

from gateway.auth import KeyManager, KeyNameTaken, Principal, RedisKeyStore, generate_key
from gateway.errors import Forbidden, ServiceUnavailable, Unauthorized
from tests.unit.auth.conftest import CountingStore, FakeClock
from tests.unit.store.helpers import resilient, wait_recovered


async def test_create_returns_the_key_once_and_authenticate_accepts_it(store) -> None:
    manager = KeyManager(store)
    plaintext, rec = await manager.create("mobile", rpm=60, tpm=1000, concurrency=2, presets=["receipt"])
    assert plaintext.startswith("vlgw_") and rec.key_id == plaintext[:11]
    principal = await manager.authenticate(plaintext)
    assert principal == Principal(
        name="mobile", key_id=rec.key_id, limits=rec.limits, presets=("receipt",), routes=None
    )
    assert [r.name for r in await manager.list()] == ["mobile"]
    await manager.aclose()


async def test_duplicate_name_is_refused(store) -> None:
    manager = KeyManager(store)
    await manager.create("mobile")
    with pytest.raises(KeyNameTaken):
        await manager.create("mobile")


@pytest.mark.parametrize("bad", [{"rpm": 0}, {"tpm": -1}, {"concurrency": 0}])
async def test_invalid_limits_are_refused(store, bad) -> None:
    with pytest.raises(ValueError):
        await KeyManager(store).create("x", **bad)


@pytest.mark.parametrize("presented", [None, "", "vlgw_x", "Bearer nope", "sk-" + "a" * 48])
async def test_missing_or_malformed_keys_never_reach_the_store(store, presented) -> None:
    spy = CountingStore(store)
    with pytest.raises(Unauthorized) as err:
        await KeyManager(spy).authenticate(presented)
    assert err.value.code == 40101
    assert spy.calls == []


async def test_bad_checksum_is_refused_with_zero_store_calls(store) -> None:
    manager = KeyManager(store)
    plaintext, _ = await manager.create("mobile")
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    spy = CountingStore(store)
    with pytest.raises(Unauthorized):
        await KeyManager(spy).authenticate(tampered)
    assert spy.calls == []


async def test_well_formed_unknown_key_is_401_and_cached(store) -> None:
    spy = CountingStore(store)
    manager = KeyManager(spy, cache_seconds=10)
    unknown = generate_key()
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await manager.authenticate(unknown)
    assert spy.calls == ["get"]  # negative answers are cached too


async def test_hashes_are_compared_in_constant_time(store, monkeypatch) -> None:
    manager = KeyManager(store)
    plaintext, rec = await manager.create("mobile")
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    await manager.authenticate(plaintext)
    assert (rec.key_hash.encode(), rec.key_hash.encode()) in compared
    await manager.aclose()


async def test_last_used_is_updated_at_most_once_per_interval(store) -> None:
    spy = CountingStore(store)
    clock = FakeClock()
    manager = KeyManager(spy, cache_seconds=0, touch_interval=60, clock=clock)
    plaintext, _ = await manager.create("mobile")
    for _ in range(5):
        await manager.authenticate(plaintext)
    await manager.aclose()
    assert spy.calls.count("touch") == 1
    assert (await manager.list())[0].last_used_at is not None
    clock.advance(61)
    await manager.authenticate(plaintext)
    await manager.aclose()
    assert spy.calls.count("touch") == 2


async def test_revocation_reaches_another_replica_within_the_cache_window(store_factory) -> None:
    clock = FakeClock()
    operator = KeyManager(store_factory())
    replica = KeyManager(store_factory(), cache_seconds=2.0, clock=clock)
    plaintext, _ = await operator.create("mobile")
    await replica.authenticate(plaintext)
    assert await operator.revoke("mobile") is True
    await replica.authenticate(plaintext)  # still cached: within the documented window
    clock.advance(2.1)
    with pytest.raises(Unauthorized, match="revoked"):
        await replica.authenticate(plaintext)
    with pytest.raises(Unauthorized):
        await operator.authenticate(plaintext)  # the revoking process forgets at once
    assert await operator.revoke("mobile") is False
    await operator.aclose()
    await replica.aclose()


async def test_auth_disabled_returns_the_anonymous_principal(store) -> None:
    spy = CountingStore(store)
    principal = await KeyManager(spy, auth_disabled=True).authenticate(None)
    assert principal.name == "anonymous" and principal.allows_route("/v1/qwen-vl")
    assert spy.calls == []


def test_principal_route_and_preset_checks() -> None:
    p = Principal(name="a", key_id="vlgw_x", presets=("receipt", "ocr-*"), routes=("/v1/qwen-vl",))
    p.check_route("/v1/qwen-vl")
    p.check_preset("receipt")
    p.check_preset("ocr-fast")
    with pytest.raises(Forbidden) as err:
        p.check_route("/v1/chat/completions")
    assert err.value.code == 40301
    with pytest.raises(Forbidden):
        p.check_preset("other")
    everything = Principal(name="b", key_id="vlgw_y")
    everything.check_route("/anything")
    everything.check_preset("anything")


async def test_redis_outage_uses_last_known_good_and_refuses_unknown_keys_with_503(own_redis) -> None:
    client = resilient(own_redis.url)
    clock = FakeClock()
    manager = KeyManager(RedisKeyStore(client), cache_seconds=1.0, clock=clock)
    good, _ = await manager.create("good")
    revoked, _ = await manager.create("gone")
    await manager.revoke("gone")
    await manager.authenticate(good)
    with pytest.raises(Unauthorized):
        await manager.authenticate(revoked)
    own_redis.cli("CLIENT", "PAUSE", "1500", "ALL")
    clock.advance(5)  # every cache entry is stale
    assert (await manager.authenticate(good)).name == "good"  # last-known-good
    with pytest.raises(Unauthorized):
        await manager.authenticate(revoked)  # last-known answer for this key: revoked
    with pytest.raises(ServiceUnavailable) as err:
        await manager.authenticate(generate_key())  # never seen: don't call it invalid
    assert err.value.code == 50301 and err.value.retry_after_seconds == 1
    await wait_recovered(client)
    clock.advance(5)
    with pytest.raises(Unauthorized):
        await manager.authenticate(generate_key())  # store answers again: a real 401
    await manager.aclose()
    await client.aclose()
