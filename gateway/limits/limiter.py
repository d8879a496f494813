"""Per-key limits: requests per minute, tokens per minute, concurrent requests.

Checked before any image work or upstream call. With Redis the state is shared by every gateway
process; without it (or while it is down and ``GATEWAY_LIMIT_FALLBACK=local``) each process
keeps its own buckets at ``limit / share`` so that the processes together stay near the limit.
While Redis is down those buckets start from the last state Redis reported, and what they admit
is charged to Redis when it is back (:mod:`gateway.limits.fallback`).
Keys without limits (and no defaults) cost nothing: no Redis round-trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from typing import Literal

from gateway import metrics
from gateway.auth.principal import Limits, Principal
from gateway.errors import ConcurrencyLimited, ServiceUnavailable
from gateway.limits.backend import LimitBackend, RateOutcome
from gateway.limits.decision import ALLOWED_UNLIMITED, LimitDecision
from gateway.limits.fallback import FallbackDebts, RateMemory
from gateway.limits.local import LocalBackend
from gateway.limits.redis_backend import RedisBackend
from gateway.settings import Settings
from gateway.store.redis import ResilientRedis, StoreUnavailable

Fallback = Literal["local", "open", "closed"]
CLOSED_RETRY_AFTER = 1.0
CONCURRENCY_RETRY_AFTER = 1.0
REPAY_PER_CALL = 16  # fallback debts charged to Redis by one successful check, after an outage


def _share(limit: int | None, divisor: int) -> int | None:
    return None if limit is None else max(1, math.ceil(limit / divisor))


class Lease:
    """A held concurrency slot, renewed in the background until released."""

    def __init__(self, backend: LimitBackend, subject: str, lease_id: str, ttl: float) -> None:
        self.backend, self.subject, self.lease_id, self.ttl = backend, subject, lease_id, ttl
        self._renewer: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            with contextlib.suppress(StoreUnavailable):  # the lease's TTL covers a missed renewal
                await self.backend.renew(self.subject, self.lease_id, self.ttl)

    def abandon(self) -> None:
        """Stop renewing without releasing: the slot frees itself after the TTL (as if the process died)."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    async def release(self) -> None:
        """Give the slot back (idempotent; a failed release expires with the TTL)."""
        if self._renewer is None:
            return
        self.abandon()
        with contextlib.suppress(StoreUnavailable):
            await self.backend.release(self.subject, self.lease_id)


class Limiter:
    """rpm/tpm checks, token reconciliation and concurrency leases for principals."""

    def __init__(
        self,
        redis: ResilientRedis | None = None,
        *,
        defaults: Limits | None = None,
        fallback: Fallback = "local",
        replicas: int = 1,
        local_share: int = 1,
        window_seconds: float = 60.0,
        lease_seconds: float = 30.0,
        key_labels: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``replicas``: processes sharing the limits (replicas x workers), which divides them in
        the Redis-down fallback; ``local_share`` divides them without Redis."""
        self.defaults = defaults or Limits()
        self.fallback = fallback
        self.window = window_seconds
        self.lease_seconds = lease_seconds
        self.key_labels = key_labels
        self.primary: LimitBackend
        self.fallback_backend: LocalBackend | None = None
        self._redis: RedisBackend | None = None
        self.memory = RateMemory(replicas, clock)
        self.debts = FallbackDebts()
        self._fallback_used = False
        if redis is not None:
            self.primary = self._redis = RedisBackend(redis)
            self._primary_divisor = 1
            self.fallback_backend = LocalBackend("fallback", clock, start=self.memory.start)
            self._fallback_divisor = replicas
        else:
            self.primary = LocalBackend("local", clock)
            self._primary_divisor = local_share

    @classmethod
    def from_settings(cls, settings: Settings, redis: ResilientRedis | None = None) -> Limiter:
        return cls(
            redis,
            defaults=Limits(settings.default_rpm, settings.default_tpm, settings.default_concurrency),
            fallback=settings.limit_fallback,
            replicas=settings.replicas * settings.workers,
            local_share=settings.workers,
            key_labels=settings.metrics_key_labels,
        )

    def limits_for(self, principal: Principal) -> Limits:
        """The principal's limits with the configured defaults filled in."""
        return principal.limits.or_defaults(self.defaults)

    # --- rates ------------------------------------------------------------------------------------

    async def evaluate(self, principal: Principal, estimated_tokens: int = 0) -> LimitDecision:
        """Charge one request and ``estimated_tokens``; a refusal is returned (``allowed=False``)."""
        limits = self.limits_for(principal)
        if limits.rpm is None and limits.tpm is None:
            return ALLOWED_UNLIMITED
        cost = max(0, estimated_tokens)
        started = time.perf_counter()
        backend = self.primary.name
        try:
            outcome = await self._hit(self.primary, principal.name, limits, cost, self._primary_divisor)
        except StoreUnavailable:
            backend = "fallback" if self.fallback == "local" else self.fallback
            if self.fallback == "closed":
                self._count(principal, ("rpm",), "refused_closed")
                raise ServiceUnavailable(
                    "rate limit store unavailable", retry_after=CLOSED_RETRY_AFTER
                ) from None
            if self.fallback == "open" or self.fallback_backend is None:
                self._count(principal, ("rpm", "tpm"), "allowed_open", limits)
                return LimitDecision(allowed=True, backend="open")
            self._fallback_used = True
            outcome = await self._hit(
                self.fallback_backend, principal.name, limits, cost, self._fallback_divisor
            )
            if outcome.allowed:
                self._owe(principal.name, limits, cost)
        else:
            await self._heard_from_redis(principal.name, outcome)
        finally:
            metrics.LIMITER_DURATION.labels(backend=backend).observe(time.perf_counter() - started)
        suffix = "" if backend in ("redis", "local") else "_" + backend
        if outcome.allowed:
            self._count(principal, ("rpm", "tpm"), "allowed" + suffix, limits)
        else:
            self._count(principal, (outcome.refused or "rpm",), "refused" + suffix)
        return LimitDecision(
            allowed=outcome.allowed,
            quotas=outcome.quotas,
            refused=outcome.refused,
            retry_after=None if outcome.allowed else outcome.retry_after,
            backend=backend,
        )

    async def _hit(
        self, backend: LimitBackend, subject: str, limits: Limits, cost: int, divisor: int
    ) -> RateOutcome:
        return await backend.hit(
            subject, _share(limits.rpm, divisor), _share(limits.tpm, divisor), cost, self.window
        )

    def _owe(self, subject: str, limits: Limits, cost: int) -> None:
        if limits.rpm is not None:
            self.debts.add("rpm", subject, limits.rpm, 1)
        if limits.tpm is not None and cost:
            self.debts.add("tpm", subject, limits.tpm, cost)

    async def _heard_from_redis(self, subject: str, outcome: RateOutcome) -> None:
        """Remember the state Redis reported; after an outage, charge it what the fallback let through."""
        if self._redis is None:
            return
        for quota in outcome.quotas:
            self.memory.remember(quota.kind, subject, quota.reset, self.window)
        if self._fallback_used and self.fallback_backend is not None:
            self._fallback_used = False
            self.fallback_backend.forget_rates()  # the next outage starts from Redis's state again
        if self.debts:
            owed = self.debts.take()
            for entry in owed[REPAY_PER_CALL:]:  # later calls repay the rest: no one call waits long
                self.debts.add(*entry)
            for i, (kind, name, limit, units) in enumerate(owed[:REPAY_PER_CALL]):
                try:
                    tat_offset = await self._redis.charge(name, limit, units, self.window, kind)
                except StoreUnavailable:
                    for entry in owed[i:REPAY_PER_CALL]:
                        self.debts.add(*entry)
                    return
                self.memory.remember(kind, name, tat_offset, self.window)

    async def reconcile(self, principal: Principal, estimated_tokens: int, actual_tokens: int) -> None:
        """After the answer: refund (actual < estimate) or charge (actual > estimate) the difference."""
        limits = self.limits_for(principal)
        delta = actual_tokens - estimated_tokens
        if limits.tpm is None or delta == 0:
            return
        try:
            if self._redis is not None:
                tat_offset = await self._redis.charge(principal.name, limits.tpm, delta, self.window)
                self.memory.remember("tpm", principal.name, tat_offset, self.window)
            else:
                tpm = _share(limits.tpm, self._primary_divisor) or 1
                await self.primary.adjust(principal.name, tpm, delta, self.window)
        except StoreUnavailable:
            if self.fallback == "local" and self.fallback_backend is not None:
                tpm = _share(limits.tpm, self._fallback_divisor) or 1
                await self.fallback_backend.adjust(principal.name, tpm, delta, self.window)
                self.debts.add("tpm", principal.name, limits.tpm, delta)

    # --- concurrency ------------------------------------------------------------------------------

    async def acquire(self, principal: Principal) -> Lease | None:
        """Take a concurrency slot (None when the key has no concurrency limit); raise 42903 when full."""
        limit = self.limits_for(principal).concurrency
        if limit is None:
            return None
        lease_id = uuid.uuid4().hex
        started = time.perf_counter()
        backend: LimitBackend = self.primary
        try:
            taken = await backend.acquire(
                principal.name, _share(limit, self._primary_divisor) or 1, lease_id, self.lease_seconds
            )
        except StoreUnavailable:
            if self.fallback == "closed":
                self._count(principal, ("concurrency",), "refused_closed")
                raise ServiceUnavailable(
                    "rate limit store unavailable", retry_after=CLOSED_RETRY_AFTER
                ) from None
            if self.fallback == "open" or self.fallback_backend is None:
                self._count(principal, ("concurrency",), "allowed_open")
                return None
            backend = self.fallback_backend
            share = _share(limit, self._fallback_divisor) or 1
            taken = await backend.acquire(principal.name, share, lease_id, self.lease_seconds)
        finally:
            metrics.LIMITER_DURATION.labels(backend=backend.name).observe(time.perf_counter() - started)
        suffix = "" if backend is self.primary else "_fallback"
        if not taken:
            self._count(principal, ("concurrency",), "refused" + suffix)
            raise ConcurrencyLimited(
                f"concurrency limit exceeded: {limit} requests in flight", retry_after=CONCURRENCY_RETRY_AFTER
            )
        self._count(principal, ("concurrency",), "allowed" + suffix)
        return Lease(backend, principal.name, lease_id, self.lease_seconds)

    # --- metrics ----------------------------------------------------------------------------------

    def _count(
        self, principal: Principal, kinds: tuple[str, ...], decision: str, limits: Limits | None = None
    ) -> None:
        key = principal.name if self.key_labels else "-"
        for kind in kinds:
            if limits is None or getattr(limits, kind) is not None:
                metrics.LIMIT_DECISIONS.labels(kind=kind, decision=decision, key=key).inc()
