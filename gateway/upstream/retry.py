"""The retry policy: when a failed upstream attempt may be tried again, on another replica.

A retry is safe only when the replica cannot have started work the client will see:

- only **before the first byte reaches the client** (a stream that has begun is never replayed);
- only on **connect errors**, **503** (vLLM's queue overflow; also 502 from a proxy in front of
  it, see ``RETRYABLE_UPSTREAM_STATUSES``) and **replica death** (the connection dropped before
  any response byte);
- never on a 4xx (the request itself is at fault and would fail anywhere), a 500 (the request
  may be what broke the engine) or a read timeout (the replica may still be generating: a
  retry would double the GPU work);
- on a **different replica** (``exclude``), at most ``upstream_retries`` times, and not past
  the request's deadline;
- a replica that answered 503/429 with ``Retry-After`` is skipped until then (``report(...,
  "overloaded", retry_after)``); when every replica is, the client gets 503 with that
  ``Retry-After``.

``is_retryable`` and ``outcome_of`` accept raw httpx exceptions and the gateway errors the
upstream client maps them to (whose ``__cause__`` keeps the httpx exception).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from gateway import errors, metrics
from gateway.constants import RETRYABLE_UPSTREAM_STATUSES
from gateway.upstream.pool import ReplicaPool
from gateway.upstream.replica import Outcome, Replica

T = TypeVar("T")

# Refused, or dropped before any response byte (the replica died): another replica may serve it.
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


def _httpx_cause(exc: BaseException) -> httpx.HTTPError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.HTTPError):
            return seen
        seen = seen.__cause__
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether another replica may be tried (the caller guarantees no byte reached the client)."""
    cause = _httpx_cause(exc)
    if isinstance(cause, httpx.HTTPStatusError):
        return cause.response.status_code in RETRYABLE_UPSTREAM_STATUSES
    if isinstance(cause, _UNREACHABLE):
        return True
    if isinstance(cause, httpx.HTTPError):
        return False  # read/write/pool timeouts, protocol misuse ...
    if isinstance(exc, errors.ServiceUnavailable | errors.UpstreamError):
        return bool(exc.extra.get("retryable"))  # the client's mapping of 503/429 answers
    return False


def outcome_of(exc: BaseException) -> Outcome | None:
    """What to ``report()`` for a failed attempt; None when the replica is not to blame."""
    if isinstance(exc, errors.GatewayError) and "outcome" in exc.extra:
        outcome: Outcome = exc.extra["outcome"]  # the data-plane client's own classification
        return outcome
    cause = _httpx_cause(exc)
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
        if status in (429, 503):
            return "overloaded"
        return "server_error" if status >= 500 else "ok"
    if isinstance(cause, _UNREACHABLE):
        return "connect_error"
    if isinstance(cause, httpx.PoolTimeout):
        return None  # our own connection pool is exhausted
    if isinstance(cause, httpx.TimeoutException) or isinstance(exc, errors.UpstreamTimeout | TimeoutError):
        return "timeout"
    if isinstance(cause, httpx.HTTPError):
        return "server_error"
    if isinstance(exc, errors.ServiceUnavailable):
        return "overloaded" if exc.extra.get("retryable") else None
    if isinstance(exc, errors.UpstreamError):
        return "server_error"
    if isinstance(exc, errors.GatewayError) and exc.status < 500:
        return "ok"  # the replica answered properly; the request was at fault
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """The replica's ``Retry-After`` in seconds, when the failure carries one."""
    if isinstance(exc, errors.GatewayError):
        return exc.retry_after
    cause = _httpx_cause(exc)
    if isinstance(cause, httpx.HTTPStatusError):
        try:
            return float(cause.response.headers.get("retry-after", ""))
        except ValueError:
            return None
    return None


async def call_with_retries(
    pool: ReplicaPool,
    attempt: Callable[[Replica], Awaitable[T]],
    *,
    retries: int,
    affinity: str | None = None,
    deadline: float | None = None,
) -> T:
    """Run ``attempt`` on a leased replica, retrying retryable failures on other replicas.

    ``attempt`` must return before any byte reaches the client (for a stream: once the upstream
    answered 200 and the stream is open; the lease must then be held by the caller). ``deadline``
    is a ``time.monotonic()`` instant; no new attempt starts after it.
    """
    tried: set[str] = set()
    last: BaseException | None = None
    for number in range(retries + 1):
        if number and deadline is not None and time.monotonic() >= deadline:
            break
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        leased = False
        try:
            async with pool.lease(affinity=affinity, exclude=frozenset(tried), max_wait=remaining) as replica:
                leased = True
                try:
                    result = await attempt(replica)
                except Exception as exc:
                    outcome = outcome_of(exc)
                    if outcome is not None:
                        pool.report(replica, outcome, retry_after_of(exc))
                    if not is_retryable(exc) or number == retries:
                        raise
                    tried.add(replica.name)
                    last = exc
                    metrics.UPSTREAM_RETRIES.labels(reason=outcome or "error").inc()
                    continue
                pool.report(replica, "ok")
                return result
        except errors.ServiceUnavailable:
            if leased or last is None:
                raise
            raise last from last.__cause__  # no replica left to try: the client sees the real failure
    assert last is not None
    raise last
