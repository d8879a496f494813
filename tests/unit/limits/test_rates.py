"""Requests and tokens per minute: GCRA exactness, Retry-After, reconciliation, headers."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.auth import Limits
from gateway.errors import RequestRateLimited, TokenRateLimited
from gateway.limits import Limiter
from tests.unit.limits.conftest import check, principal, slot
from tests.unit.store.helpers import resilient


def decisions(kind: str, decision: str, key: str) -> float:
    labels = {"kind": kind, "decision": decision, "key": key}
    return REGISTRY.get_sample_value("gateway_limit_decisions_total", labels) or 0.0


async def test_rpm_allows_exactly_the_limit_then_42901_with_retry_after(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("rpm-exact", rpm=3)
    remaining = [int((await check(limiter, p)).headers()["RateLimit-Remaining"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    with pytest.raises(RequestRateLimited) as err:
        await check(limiter, p)
    assert err.value.code == 42901
    assert err.value.message == "rate limit exceeded: 3 requests per minute"
    assert 19.0 <= err.value.retry_after <= 20.0  # one request every 60/3 s
    assert err.value.retry_after_seconds == 20


async def test_a_refused_request_passes_once_retry_after_has_elapsed(make_limiter) -> None:
    limiter = make_limiter(window_seconds=1.0)
    p = principal("rpm-wait", rpm=4)
    for _ in range(4):
        await check(limiter, p)
    refused = await limiter.evaluate(p)
    assert not refused.allowed and refused.refused == "rpm"
    assert 0.15 <= refused.retry_after <= 0.25
    assert refused.headers()["Retry-After"] == "1"
    assert refused.headers()["RateLimit-Remaining"] == "0"
    await asyncio.sleep(refused.retry_after + 0.03)
    assert (await limiter.evaluate(p)).allowed
    assert not (await limiter.evaluate(p)).allowed  # one slot came back, not more


async def test_refusals_do_not_consume_quota(make_limiter) -> None:
    limiter = make_limiter(window_seconds=1.0)
    p = principal("no-charge", rpm=2)
    await check(limiter, p)
    await check(limiter, p)
    for _ in range(20):
        assert not (await limiter.evaluate(p)).allowed
    await asyncio.sleep(0.55)
    assert (await limiter.evaluate(p)).allowed


async def test_tpm_charges_the_estimate_and_reconcile_refunds_or_charges(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("tpm", tpm=100)
    await check(limiter, p, estimated_tokens=60)
    with pytest.raises(TokenRateLimited) as err:
        await check(limiter, p, estimated_tokens=60)
    assert err.value.code == 42902
    assert "100 tokens per minute" in err.value.message
    assert 11.0 <= err.value.retry_after <= 12.0  # 20 tokens over, 0.6 s per token
    await limiter.reconcile(p, estimated_tokens=60, actual_tokens=20)  # refund 40
    decision = await check(limiter, p, estimated_tokens=60)
    assert decision.headers()["RateLimit-Remaining"] == "20"
    await limiter.reconcile(p, estimated_tokens=60, actual_tokens=90)  # charge 30 more: over budget
    with pytest.raises(TokenRateLimited):
        await check(limiter, p, estimated_tokens=1)


async def test_a_request_larger_than_the_tpm_limit_is_refused(make_limiter) -> None:
    limiter = make_limiter()
    with pytest.raises(TokenRateLimited) as err:
        await check(limiter, principal("huge", tpm=100), estimated_tokens=101)
    assert err.value.retry_after == 60


async def test_rpm_and_tpm_are_checked_together(make_limiter) -> None:
    limiter = make_limiter()
    p = principal("both", rpm=10, tpm=100)
    decision = await check(limiter, p, estimated_tokens=90)
    headers = decision.headers()
    assert headers["RateLimit-Limit"] == "100" and headers["RateLimit-Remaining"] == "10"  # tightest
    assert headers["RateLimit-Policy"] == "10;w=60, 100;w=60"
    assert 53 <= int(headers["RateLimit-Reset"]) <= 54
    with pytest.raises(TokenRateLimited):
        await check(limiter, p, estimated_tokens=20)
    # The refused tpm check did not spend a request: 9 more fit.
    for _ in range(9):
        await check(limiter, p)
    with pytest.raises(RequestRateLimited):
        await check(limiter, p)


async def test_keys_are_limited_independently(make_limiter) -> None:
    limiter = make_limiter()
    await check(limiter, principal("one", rpm=1))
    await check(limiter, principal("two", rpm=1))
    with pytest.raises(RequestRateLimited):
        await check(limiter, principal("one", rpm=1))


async def test_defaults_apply_to_keys_without_their_own_limits(make_limiter) -> None:
    limiter = make_limiter(defaults=Limits(rpm=1))
    await check(limiter, principal("defaulted"))
    with pytest.raises(RequestRateLimited):
        await check(limiter, principal("defaulted"))
    await check(limiter, principal("own", rpm=2))
    await check(limiter, principal("own", rpm=2))


async def test_two_limiters_on_one_redis_enforce_one_global_limit(redis_url: str) -> None:
    clients = [resilient(redis_url), resilient(redis_url)]
    replica_a, replica_b = (Limiter(client) for client in clients)
    p = principal("global", rpm=4, tpm=1000)
    results = await asyncio.gather(*((replica_a if i % 2 else replica_b).evaluate(p, 10) for i in range(10)))
    assert sum(d.allowed for d in results) == 4
    assert {d.backend for d in results} == {"redis"}
    for client in clients:
        await client.aclose()


async def test_decisions_are_counted_with_the_key_name_or_a_dash(make_limiter) -> None:
    labelled = make_limiter()
    name = f"metrics-{make_limiter.backend}"
    before = decisions("rpm", "allowed", name), decisions("rpm", "refused", name)
    await labelled.evaluate(principal(name, rpm=1))
    await labelled.evaluate(principal(name, rpm=1))
    assert decisions("rpm", "allowed", name) == before[0] + 1
    assert decisions("rpm", "refused", name) == before[1] + 1
    anonymous = make_limiter(key_labels=False)
    dash = decisions("rpm", "allowed", "-")
    await anonymous.evaluate(principal(name + "-x", rpm=5))
    assert decisions("rpm", "allowed", "-") == dash + 1


async def test_unlimited_principals_cost_no_store_call(make_limiter, monkeypatch) -> None:
    limiter = make_limiter()
    calls = []

    async def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("no store call expected")

    monkeypatch.setattr(limiter.primary, "hit", spy)
    monkeypatch.setattr(limiter.primary, "acquire", spy)
    decision = await check(limiter, principal("free"), estimated_tokens=10_000)
    assert decision.allowed and decision.headers() == {} and decision.backend == "none"
    async with slot(limiter, principal("free")) as lease:
        assert lease is None
    await limiter.reconcile(principal("free"), 10, 20)
    assert calls == []


def test_local_share_divides_limits_between_worker_processes() -> None:
    limiter = Limiter(None, local_share=4)

    async def run() -> int:
        p = principal("shared", rpm=10)
        return sum([(await limiter.evaluate(p)).allowed for _ in range(10)])

    assert asyncio.run(run()) == 3  # ceil(10 / 4)
