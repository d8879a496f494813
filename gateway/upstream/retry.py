"""The one retry loop: a failed upstream attempt is tried again on another replica when that is safe.

A retry is safe only when the replica cannot have started work the client will see:

- only **before the first token reaches the client** (a stream that has sent text is never
  replayed; one that sent only headers, keep-alives or an empty role chunk may be);
- only for failures whose class says ``retryable``: connect errors, vLLM's 503/429 (queue
  overflow, ``UpstreamOverloaded``) and **replica death** (the connection dropped before an answer);
- never on a 4xx (the request itself is at fault and would fail anywhere), a 500 (the request
  may be what broke the engine) or a read timeout (the replica may still be generating: a
  retry would double the GPU work);
- on a **different replica** (``exclude``), at most ``upstream_retries`` times, and not past
  the request's deadline;
- a replica that answered 503/429 with ``Retry-After`` is skipped until then; when every replica
  is, the client gets 503 with that ``Retry-After``.

Every failure arrives here already converted to a gateway error (``upstream/errors.py``); its
class carries ``retryable`` and ``outcome``, so this module never looks at transport exceptions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway import errors, metrics
from gateway.errors import Outcome
from gateway.upstream.pool import ReplicaPool
from gateway.upstream.replica import Replica

T = TypeVar("T")

Attempt = Callable[[Replica, contextlib.AsyncExitStack], Awaitable[T]]
"""One try on a leased replica. The stack holds the lease; a stream takes it over (``pop_all``)."""


def outcome_of(exc: errors.GatewayError) -> Outcome | None:
    """What to report about the replica for a failed attempt; None when it is not to blame."""
    if exc.outcome is not None:
        return exc.outcome
    if exc.status < 500:
        return "ok"  # the replica answered properly; the request was at fault
    return None


def report_failure(pool: ReplicaPool, replica: Replica, exc: errors.GatewayError) -> Outcome | None:
    """Feed a failure into the replica's health state; returns the outcome reported."""
    outcome = outcome_of(exc)
    if outcome is not None:
        pool.report(replica, outcome, exc.retry_after)
    return outcome


async def call_with_retries(
    pool: ReplicaPool,
    attempt: Attempt[T],
    *,
    retries: int,
    affinity: str | None = None,
    deadline: float | None = None,
    exclude: frozenset[str] = frozenset(),
) -> T:
    """Run ``attempt`` on a leased replica, retrying retryable failures on other replicas.

    ``attempt`` must finish before any byte reaches the client. The lease is released when it
    returns, unless it took the stack over (a stream keeps its replica until it is closed).
    ``deadline`` is a ``time.monotonic()`` instant; no new attempt starts after it.
    """
    tried = set(exclude)
    last: errors.GatewayError | None = None
    for number in range(retries + 1):
        if number and deadline is not None and time.monotonic() >= deadline:
            break
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        async with contextlib.AsyncExitStack() as held:
            try:
                replica = await held.enter_async_context(
                    pool.lease(affinity=affinity, exclude=frozenset(tried), max_wait=remaining)
                )
            except errors.ServiceUnavailable:
                if last is None:
                    raise
                raise last from last.__cause__  # no replica left to try: the client sees the real failure
            try:
                result = await attempt(replica, held)
            except errors.GatewayError as exc:
                outcome = report_failure(pool, replica, exc)
                if not exc.retryable or number == retries:
                    raise
                tried.add(replica.name)
                last = exc
                metrics.UPSTREAM_RETRIES.labels(reason=outcome or "error").inc()
                continue
            pool.report(replica, "ok")
            return result
    assert last is not None
    raise last
