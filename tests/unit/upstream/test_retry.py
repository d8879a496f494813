"""The retry policy and the one retry loop, through the real upstream client against real emulators.

Failures reach the loop as typed gateway errors (upstream/errors.py); their classes say whether
another replica may be tried and what the failure says about the replica.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import httpx
import pytest
from prometheus_client import REGISTRY

from gateway import errors
from gateway.upstream.client import UpstreamClient
from gateway.upstream.errors import error_from_status, map_transport_errors
from gateway.upstream.pool import ReplicaPool
from gateway.upstream.retry import outcome_of
from tests.servers import free_port
from tests.unit.upstream.fleet import CHAT_BODY, Fleet

PoolFactory = Callable[..., ReplicaPool]


def mapped(exc: BaseException) -> errors.GatewayError:
    """The gateway error the client's edge turns a transport exception into."""
    with pytest.raises(errors.GatewayError) as caught, map_transport_errors("r0"):
        raise exc
    return caught.value


def connector_error() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "refused"))


CASES: list[tuple[str, Callable[[], errors.GatewayError], bool, str | None]] = [
    ("connect refused", lambda: mapped(connector_error()), True, "connect_error"),
    ("connect timeout", lambda: mapped(httpx.ConnectTimeout("slow")), True, "connect_error"),
    ("died before answering", lambda: mapped(aiohttp.ServerDisconnectedError()), True, "connect_error"),
    ("payload broke", lambda: mapped(aiohttp.ClientPayloadError("x")), True, "connect_error"),
    ("read timeout", lambda: mapped(TimeoutError()), False, "timeout"),
    ("pool timeout", lambda: mapped(httpx.PoolTimeout("busy")), False, None),
    ("503", lambda: error_from_status(503, b"", {"retry-after": "4"}, "r0"), True, "overloaded"),
    ("429", lambda: error_from_status(429, b"", {}, "r0"), True, "overloaded"),
    ("500", lambda: error_from_status(500, b"", {}, "r0"), False, "server_error"),
    ("400", lambda: error_from_status(400, b'{"error": {"message": "bad"}}', {}, "r0"), False, "ok"),
    ("401 (our configuration)", lambda: error_from_status(401, b"", {}, "r0"), False, "ok"),
    ("404 (our configuration)", lambda: error_from_status(404, b"", {}, "r0"), False, "ok"),
    ("stream broke", lambda: errors.UpstreamStreamBroken(), True, "connect_error"),
    ("first token late", lambda: errors.FirstTokenTimeout(), False, "timeout"),
    ("no replica eligible", lambda: errors.ServiceUnavailable(), False, None),
]


@pytest.mark.parametrize(("case", "make", "retryable", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_policy(
    case: str, make: Callable[[], errors.GatewayError], retryable: bool, outcome: str | None
) -> None:
    exc = make()
    assert exc.retryable is retryable
    assert outcome_of(exc) == outcome


def test_overloaded_carries_the_replicas_retry_after() -> None:
    exc = error_from_status(503, b"", {"retry-after": "4"}, "r0")
    assert isinstance(exc, errors.UpstreamOverloaded) and exc.retry_after == 4.0


def retries(reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_upstream_retries_total", {"reason": reason}) or 0.0


async def test_a_dead_replica_is_retried_elsewhere(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(1)
    dead = f"http://127.0.0.1:{free_port()}"
    client = client_factory([dead, fleet.urls[0]], upstream_eject_failures=100, upstream_retries=1)
    before = retries("connect_error")
    for number in range(20):
        answer = await client.chat(CHAT_BODY, request_id=f"r{number}")
        assert answer.replica == "r1"
    assert retries("connect_error") > before
    assert client.pool.replicas[0].last_error == "connect_error"


async def test_4xx_is_not_retried(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    client = client_factory(fleet.urls, upstream_retries=2)
    with pytest.raises(errors.UpstreamModelMissing):
        await client.chat({**CHAT_BODY, "model": "nope"}, request_id="x")
    assert fleet.stats(0)["chat_requests"] + fleet.stats(1)["chat_requests"] == 1


async def test_503_with_retry_after_is_retried_and_honoured(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    fleet.set_faults(0, error_rate=1.0, error_status=503)
    client = client_factory(fleet.urls, upstream_routing="least_outstanding", upstream_retries=2)
    for number in range(10):
        answer = await client.chat(CHAT_BODY, request_id=f"r{number}")
        assert answer.replica == "r1"
    r0 = client.pool.replicas[0]
    assert client.pool.snapshot()["r0"]["overloaded_for"] > 0 and r0.consecutive_failures == 0
    assert fleet.stats(0)["chat_requests"] == 1  # skipped after the first 503, not hammered


async def test_retries_stop_at_the_bound_and_raise_the_real_error(
    client_factory: Callable[..., UpstreamClient],
) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    client = client_factory(dead, upstream_eject_failures=100, upstream_retries=1)
    before = retries("connect_error")
    with pytest.raises(errors.UpstreamUnreachable):
        await client.chat(CHAT_BODY, request_id="a")
    assert retries("connect_error") - before == 1
    many = client_factory(dead, upstream_eject_failures=100, upstream_retries=5)
    with pytest.raises(errors.UpstreamUnreachable):  # more retries than replicas: the real error
        await many.chat(CHAT_BODY, request_id="b")


async def test_500_is_not_retried(
    client_factory: Callable[..., UpstreamClient], fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(2)
    for index in (0, 1):
        fleet.set_faults(index, error_rate=1.0, error_status=500)
    client = client_factory(fleet.urls, upstream_retries=2)
    with pytest.raises(errors.UpstreamError):
        await client.chat(CHAT_BODY, request_id="x")
    assert fleet.stats(0)["chat_requests"] + fleet.stats(1)["chat_requests"] == 1
