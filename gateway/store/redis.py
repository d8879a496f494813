"""Redis with a short timeout on every call and a circuit breaker.

Every package that talks to Redis goes through :class:`ResilientRedis.run`, which turns any
Redis failure (error, timeout, open breaker) into :class:`StoreUnavailable`. Callers decide
their fallback (local limits, cache bypass, cached key lookups); this module only decides
*whether* Redis may be asked. After ``breaker_failures`` consecutive failures the breaker opens:
calls fail at once, and a background probe pings Redis until it answers, so recovery does not
wait for traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway import metrics

T = TypeVar("T")
log = structlog.get_logger("gateway.store")


class StoreUnavailable(Exception):
    """Redis could not be asked or did not answer in time; use the fallback."""


class ResilientRedis:
    """A redis-py asyncio client behind a per-call timeout and a circuit breaker."""

    def __init__(
        self, url: str, *, timeout: float, breaker_failures: int, breaker_reset_seconds: float
    ) -> None:
        self.timeout = timeout
        self.breaker_failures = breaker_failures
        self.breaker_reset_seconds = breaker_reset_seconds
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            health_check_interval=0,
            max_connections=256,
        )
        self._failures = 0
        self._open_until = 0.0
        self._probe: asyncio.Task[None] | None = None

    @property
    def degraded(self) -> bool:
        """True while the breaker is open (Redis considered down)."""
        return self._failures >= self.breaker_failures

    async def run(self, op: str, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run one Redis call under the timeout and breaker; raise StoreUnavailable on any failure."""
        if self.degraded and time.monotonic() < self._open_until:
            raise StoreUnavailable(f"redis breaker open ({op})")
        try:
            result = await asyncio.wait_for(call(self.client), timeout=self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self._record_failure(op, exc)
            raise StoreUnavailable(f"redis {op} failed: {type(exc).__name__}") from exc
        self._record_success()
        return result

    async def ping(self) -> bool:
        """True when Redis answers a PING within the timeout (does not touch the breaker)."""
        try:
            return bool(await asyncio.wait_for(self.client.ping(), timeout=self.timeout))
        except (RedisError, OSError, TimeoutError):
            return False

    def _record_failure(self, op: str, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.labels(op=op).inc()
        self._failures += 1
        if self._failures == self.breaker_failures:
            log.warning("redis_degraded", op=op, error=type(exc).__name__)
            metrics.REDIS_DEGRADED.set(1)
            self._start_probe()
        if self.degraded:
            self._open_until = time.monotonic() + self.breaker_reset_seconds

    def _record_success(self) -> None:
        if self.degraded:
            log.info("redis_recovered")
            metrics.REDIS_DEGRADED.set(0)
        self._failures = 0

    def _start_probe(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        interval = min(self.breaker_reset_seconds, 0.5)
        while self.degraded:
            await asyncio.sleep(interval)
            if await self.ping():
                self._record_success()

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.client.aclose()

    def info(self) -> dict[str, Any]:
        return {"degraded": self.degraded, "consecutive_failures": self._failures}
