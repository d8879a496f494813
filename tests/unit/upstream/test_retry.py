"""The retry policy: what is retryable, what is reported, and the helper loop against real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from gateway import errors
from gateway.upstream.pool import ReplicaPool
from gateway.upstream.replica import Replica
from gateway.upstream.retry import call_with_retries, is_retryable, outcome_of
from tests.servers import free_port
from tests.unit.upstream.fleet import CHAT_BODY, Fleet

PoolFactory = Callable[..., ReplicaPool]
REQUEST = httpx.Request("POST", "http://r/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return httpx.HTTPStatusError(f"{status}", request=REQUEST, response=response)


def mapped(error: errors.GatewayError, cause: BaseException | None) -> errors.GatewayError:
    error.__cause__ = cause  # as ``raise ... from exc`` in the client's error mapping
    return error


CASES: list[tuple[str, BaseException, bool, str | None]] = [
    ("connect refused", httpx.ConnectError("refused"), True, "connect_error"),
    ("connect timeout", httpx.ConnectTimeout("slow"), True, "connect_error"),
    ("died before answering", httpx.RemoteProtocolError("Server disconnected"), True, "connect_error"),
    ("reset", httpx.ReadError("reset"), True, "connect_error"),
    ("503", status_error(503, {"retry-after": "4"}), True, "overloaded"),
    ("429", status_error(429), False, "overloaded"),
    ("500", status_error(500), False, "server_error"),
    ("400", status_error(400), False, "ok"),
    ("read timeout", httpx.ReadTimeout("slow"), False, "timeout"),
    ("pool timeout", httpx.PoolTimeout("busy"), False, None),
    (
        "mapped connect error",
        mapped(errors.ServiceUnavailable(extra={"retryable": True}), httpx.ConnectError("x")),
        True,
        "connect_error",
    ),
    ("mapped 503", errors.ServiceUnavailable(retry_after=3, extra={"retryable": True}), True, "overloaded"),
    (
        "mapped broken connection",
        mapped(errors.UpstreamError(extra={"retryable": True}), httpx.RemoteProtocolError("x")),
        True,
        "connect_error",
    ),
    ("mapped 500", errors.UpstreamError("upstream answered 500"), False, "server_error"),
    ("mapped timeout", errors.UpstreamTimeout(), False, "timeout"),
    ("context overflow", errors.ContextOverflow(), False, "ok"),
    ("cancelled", ValueError("not upstream"), False, None),
]


@pytest.mark.parametrize(("case", "exc", "retryable", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_policy(case: str, exc: BaseException, retryable: bool, outcome: str | None) -> None:
    assert is_retryable(exc) is retryable
    assert outcome_of(exc) == outcome


def retries(reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_upstream_retries_total", {"reason": reason}) or 0.0


async def chat(http: httpx.AsyncClient, replica: Replica) -> dict[str, Any]:
    response = await http.post(f"{replica.url}/v1/chat/completions", json=CHAT_BODY)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def test_a_dead_replica_is_retried_elsewhere(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(1)
    dead = f"http://127.0.0.1:{free_port()}"
    pool = pool_factory([dead, fleet.urls[0]], upstream_eject_failures=100)
    before = retries("connect_error")
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(20):
            body = await call_with_retries(pool, lambda r: chat(http, r), retries=1)
            assert body["choices"]
    assert retries("connect_error") > before
    assert pool.replicas[0].last_error == "connect_error"


async def test_4xx_is_not_retried(pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]) -> None:
    fleet = fleet_factory(2)
    pool = pool_factory(fleet.urls)
    attempts: list[str] = []

    async def bad(replica: Replica) -> None:
        attempts.append(replica.name)
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.post(f"{replica.url}/v1/chat/completions", json={"model": "nope"})
        response.raise_for_status()

    with pytest.raises(httpx.HTTPStatusError):
        await call_with_retries(pool, bad, retries=2)
    assert len(attempts) == 1


async def test_503_with_retry_after_is_retried_and_honoured(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    fleet.set_faults(0, error_rate=1.0, error_status=503)
    pool = pool_factory(fleet.urls, upstream_routing="least_outstanding")
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(10):
            await call_with_retries(pool, lambda r: chat(http, r), retries=2)
    r0 = pool.replicas[0]
    assert pool.snapshot()["r0"]["overloaded_for"] > 0 and r0.consecutive_failures == 0
    assert fleet.stats(0)["chat_requests"] == 1  # skipped after the first 503, not hammered


async def test_retries_stop_at_the_bound_and_raise_the_real_error(pool_factory: PoolFactory) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    pool = pool_factory(dead, upstream_eject_failures=100)
    tried: list[str] = []

    async def attempt(replica: Replica) -> None:
        tried.append(replica.name)
        async with httpx.AsyncClient(timeout=5) as http:
            await http.get(replica.url)

    with pytest.raises(httpx.ConnectError):
        await call_with_retries(pool, attempt, retries=1)
    assert len(tried) == 2 and len(set(tried)) == 2
    tried.clear()
    with pytest.raises(httpx.ConnectError):  # more retries than replicas: the real error, not "no replica"
        await call_with_retries(pool, attempt, retries=5)
    assert sorted(tried) == ["r0", "r1", "r2"]


async def test_no_retry_after_the_deadline(pool_factory: PoolFactory) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    pool = pool_factory(dead, upstream_eject_failures=100)
    tried: list[str] = []

    async def attempt(replica: Replica) -> None:
        tried.append(replica.name)
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        await call_with_retries(pool, attempt, retries=2, deadline=0.0)
    assert len(tried) == 1
