"""KeyManager: create, authenticate (two caches), expiry, rotation, revocation, outages."""

from __future__ import annotations

import hmac

import pytest

from gateway.auth import KeyManager, KeyNameTaken, KeyRecord, Principal, RedisKeyStore
from gateway.auth.keys import generate_legacy_key, hash_key, key_id
from gateway.errors import Forbidden, ServiceUnavailable, Unauthorized
from tests.unit.auth.conftest import CountingStore, FakeClock
from tests.unit.store.helpers import resilient, wait_recovered


async def unknown_key(manager: KeyManager) -> str:
    """A correctly signed key that was never stored (what a deleted or lost key looks like)."""
    return (await manager.signer()).generate()


async def test_create_returns_the_key_once_and_authenticate_accepts_it(store) -> None:
    manager = KeyManager(store)
    plaintext, rec = await manager.create(
        "mobile", rpm=60, tpm=1000, concurrency=2, presets=["receipt"], models=["qwen3-vl-8b"]
    )
    assert plaintext.startswith("vlgw_") and rec.key_id == plaintext[:11]
    principal = await manager.authenticate(plaintext)
    assert principal == Principal(
        name="mobile", key_id=rec.key_id, limits=rec.limits, presets=("receipt",), routes=None,
        models=("qwen3-vl-8b",),
    )  # fmt: skip
    assert [r.name for r in await manager.list()] == ["mobile"]
    await manager.aclose()


async def test_duplicate_name_is_refused(store) -> None:
    manager = KeyManager(store)
    await manager.create("mobile")
    with pytest.raises(KeyNameTaken):
        await manager.create("mobile")


@pytest.mark.parametrize("bad", [{"rpm": 0}, {"tpm": -1}, {"concurrency": 0}, {"expires_at": 1.0}])
async def test_invalid_limits_and_past_expiry_are_refused(store, bad) -> None:
    with pytest.raises(ValueError):
        await KeyManager(store).create("x", **bad)


@pytest.mark.parametrize("presented", [None, "", "vlgw_x", "Bearer nope", "sk-" + "a" * 48])
async def test_missing_or_malformed_keys_never_reach_the_store(store, presented) -> None:
    spy = CountingStore(store)
    with pytest.raises(Unauthorized) as err:
        await KeyManager(spy).authenticate(presented)
    assert err.value.code == 40101
    assert spy.calls == []


async def test_a_bad_tag_is_refused_without_a_lookup_or_a_cache_entry(store) -> None:
    manager = KeyManager(store)
    plaintext, _ = await manager.create("mobile")
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    spy = CountingStore(store)
    checker = KeyManager(spy)
    for _ in range(3):
        with pytest.raises(Unauthorized) as err:
            await checker.authenticate(tampered)
        assert err.value.code == 40101
    assert spy.calls == ["secret"]  # the stored signing secret, read once; never a key lookup
    assert not checker._valid and not checker._negative


async def test_a_key_signed_with_another_secret_is_refused_without_a_lookup(store) -> None:
    foreign = KeyManager(store, secret="secret-of-another-gateway-000")
    plaintext, _ = await foreign.create("theirs")
    spy = CountingStore(store)
    with pytest.raises(Unauthorized):
        await KeyManager(spy, secret="our-own-secret-0123456789abc").authenticate(plaintext)
    assert spy.calls == []


async def test_managers_without_a_configured_secret_agree_through_the_store(store_factory) -> None:
    operator, server = KeyManager(store_factory()), KeyManager(store_factory())
    plaintext, _ = await operator.create("mobile")
    assert (await server.authenticate(plaintext)).name == "mobile"
    assert await server.store.stored_secret() == await operator.store.stored_secret() is not None
    await server.aclose()


async def test_legacy_crc_keys_keep_working_until_turned_off(store) -> None:
    legacy = generate_legacy_key()
    await store.add(
        KeyRecord(
            name="old-app", key_id=key_id(legacy), key_hash=hash_key(legacy), created_at=1.0, signed=False
        )
    )
    assert (await KeyManager(store).authenticate(legacy)).name == "old-app"
    spy = CountingStore(store)
    with pytest.raises(Unauthorized, match="old format"):
        await KeyManager(spy, accept_legacy=False).authenticate(legacy)
    assert spy.calls == []


async def test_well_formed_unknown_key_is_401_and_cached(store) -> None:
    spy = CountingStore(store)
    manager = KeyManager(spy, cache_seconds=10)
    unknown = await unknown_key(manager)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await manager.authenticate(unknown)
    assert spy.calls.count("get") == 1  # negative answers are cached too


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
    assert (rec.key_hash.encode(), rec.key_hash.encode()) in compared  # the stored hash
    assert any(a == plaintext[-12:] for a, _ in compared)  # the tag
    await manager.aclose()


async def test_last_used_is_written_at_most_once_per_interval_in_one_batch(store) -> None:
    spy = CountingStore(store)
    clock = FakeClock()
    manager = KeyManager(spy, cache_seconds=0, touch_interval=60, clock=clock)
    first, _ = await manager.create("mobile")
    second, _ = await manager.create("web")
    for _ in range(5):
        await manager.authenticate(first)
        await manager.authenticate(second)
    await manager.aclose()
    assert spy.calls.count("touch_many") == 1  # two keys, one write
    assert all(r.last_used_at is not None for r in await manager.list())
    clock.advance(61)
    await manager.authenticate(first)
    await manager.aclose()
    assert spy.calls.count("touch_many") == 2


async def test_expired_key_is_refused_with_its_expiry_in_the_message(store) -> None:
    wall = FakeClock()
    wall.now = 1_800_000_000.0
    manager = KeyManager(store, cache_seconds=60, wall=wall)
    plaintext, _ = await manager.create("trial", expires_at=wall.now + 3600)
    assert (await manager.authenticate(plaintext)).name == "trial"
    wall.advance(3600)
    with pytest.raises(Unauthorized, match="expired at 2027-01-15T09:00:00Z") as err:
        await manager.authenticate(plaintext)  # cached, yet refused: expiry is checked on every use
    assert err.value.code == 40101
    assert [r.status(wall.now) for r in await manager.list()] == ["expired"]
    await manager.aclose()


async def test_rotation_keeps_both_secrets_valid_for_the_grace_then_only_the_new(store_factory) -> None:
    wall = FakeClock()
    wall.now = 1_800_000_000.0
    operator = KeyManager(store_factory(), wall=wall)
    replica = KeyManager(store_factory(), cache_seconds=0, wall=wall)
    old_key, old = await operator.create("mobile", rpm=60, presets=["receipt"], models=["m1"])
    await replica.authenticate(old_key)
    new_key, new, before = await operator.rotate("mobile", grace_seconds=86_400)
    assert before.key_hash == old.key_hash and new_key != old_key
    assert (new.limits, new.presets, new.models) == (old.limits, old.presets, old.models)
    for key in (old_key, new_key):
        assert (await replica.authenticate(key)).name == "mobile"
    statuses = {r.key_id: r.status(wall.now) for r in await operator.list()}
    assert statuses == {old.key_id: "grace", new.key_id: "active"}
    with pytest.raises(KeyNameTaken):
        await operator.create("mobile")  # the name belongs to the new key
    wall.advance(86_400)
    with pytest.raises(Unauthorized, match="replaced by a rotation"):
        await replica.authenticate(old_key)
    assert (await replica.authenticate(new_key)).name == "mobile"
    with pytest.raises(LookupError):
        await operator.rotate("nobody", grace_seconds=0)
    await operator.aclose()
    await replica.aclose()


async def test_revoking_a_rotated_name_revokes_the_key_in_grace_too(store) -> None:
    manager = KeyManager(store, cache_seconds=0)
    old_key, _ = await manager.create("mobile")
    new_key, _, _ = await manager.rotate("mobile", grace_seconds=3600)
    assert await manager.revoke("mobile") is True
    for key in (old_key, new_key):
        with pytest.raises(Unauthorized, match="revoked"):
            await manager.authenticate(key)
    assert await manager.revoke("mobile") is False
    await manager.create("mobile")  # the name is free again


async def test_rotation_never_extends_an_expiry(store) -> None:
    wall = FakeClock()
    wall.now = 1_800_000_000.0
    manager = KeyManager(store, cache_seconds=0, wall=wall)
    old_key, _ = await manager.create("mobile", expires_at=wall.now + 60)
    await manager.rotate("mobile", grace_seconds=86_400)
    wall.advance(61)
    with pytest.raises(Unauthorized):
        await manager.authenticate(old_key)


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


def test_principal_route_preset_and_model_checks() -> None:
    p = Principal(
        name="a", key_id="vlgw_x", presets=("receipt", "ocr-*"), routes=("/v1/qwen-vl",),
        models=("qwen3-vl-8b", "qwen3-vl-32b-*"),
    )  # fmt: skip
    p.check_route("/v1/qwen-vl")
    p.check_preset("receipt")
    p.check_preset("ocr-fast")
    p.check_model("qwen3-vl-8b")
    p.check_model("qwen3-vl-32b-fp8")
    p.check_model("qwen-vl", served="qwen3-vl-8b")  # an alias of an allowed served model
    for check in (
        lambda: p.check_route("/v1/chat/completions"),
        lambda: p.check_preset("other"),
        lambda: p.check_model("qwen3-vl-32b"),
        lambda: p.check_model("qwen-vl", served="qwen3-vl-32b"),
    ):
        with pytest.raises(Forbidden) as err:
            check()
        assert err.value.code == 40301
    with pytest.raises(Forbidden) as err:
        p.check_model("other")
    assert err.value.param == "model"
    everything = Principal(name="b", key_id="vlgw_y")
    everything.check_route("/anything")
    everything.check_preset("anything")
    everything.check_model("anything")


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
        await manager.authenticate(await unknown_key(manager))  # never seen: don't call it invalid
    assert err.value.code == 50301 and err.value.retry_after_seconds == 1
    await wait_recovered(client)
    clock.advance(5)
    with pytest.raises(Unauthorized):
        await manager.authenticate(await unknown_key(manager))  # store answers again: a real 401
    await manager.aclose()
    await client.aclose()


async def test_concurrent_requests_with_one_key_share_one_lookup(store) -> None:
    import asyncio

    plaintext, _ = await KeyManager(store).create("mobile")
    spy = CountingStore(store)
    manager = KeyManager(spy)
    principals = await asyncio.gather(*(manager.authenticate(plaintext) for _ in range(20)))
    assert {p.name for p in principals} == {"mobile"}
    assert spy.calls.count("get") == 1
    await manager.aclose()


async def test_a_configured_secret_is_used_and_none_is_stored(store, tmp_path) -> None:
    from gateway.auth import build_key_manager
    from gateway.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, key_secret="configured-secret-0123456789")
    operator = KeyManager(store, secret=settings.key_secret.get_secret_value())
    plaintext, _ = await operator.create("app")
    assert await store.stored_secret() is None
    server = build_key_manager(settings)
    assert server._signer is not None and server._signer.verify(plaintext)
    server.store.db.close()


def test_a_short_configured_secret_is_refused_naming_the_variable() -> None:
    from gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="GATEWAY_KEY_SECRET must be at least 16 bytes"):
        load_settings(_env_file=None, key_secret="short")
