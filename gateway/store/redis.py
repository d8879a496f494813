"""Redis with a short timeout on every call and a circuit breaker, on one node, Sentinel or Cluster.

Every package that talks to Redis goes through :class:`ResilientRedis.run`, which turns any
Redis failure (error, timeout, open breaker) into :class:`StoreUnavailable`. Callers decide
their fallback (local limits, cache bypass, cached key lookups); this module only decides
*whether* Redis may be asked. After ``breaker_failures`` consecutive failures the breaker opens:
calls fail at once, and a background probe pings Redis until it answers, so recovery does not
wait for traffic.

:func:`open_redis` is the one place a Redis client is opened from ``GATEWAY_REDIS_URL`` (server
and every CLI), for each of its forms (one node, TLS, Sentinel, Cluster: :mod:`.topology`,
docs/redis.md); every multi-key script keeps its keys under one hash tag (:mod:`.layout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from gateway import metrics
from gateway.store.topology import build_client, parse_redis_url

if TYPE_CHECKING:
    from gateway.settings import Settings

T = TypeVar("T")
log = structlog.get_logger("gateway.store")


class StoreUnavailable(Exception):
    """Redis could not be asked or did not answer in time; use the fallback."""


# What a Redis call can raise when Redis is away; RedisClusterException ("no reachable node") is
# not a RedisError.
_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)
CONNECT_TIMEOUT = 5.0  # seconds to learn a cluster's slot map at start-up
SENTINEL_CHECK_SECONDS = 0.5  # how often the sentinels are asked which node is primary


class ResilientRedis:
    """A redis-py asyncio client behind a per-call timeout and a circuit breaker."""

    def __init__(
        self, url: str, *, timeout: float, breaker_failures: int, breaker_reset_seconds: float
    ) -> None:
        self.timeout = timeout
        self.breaker_failures = breaker_failures
        self.breaker_reset_seconds = breaker_reset_seconds
        self.target = parse_redis_url(url)
        self.cluster = self.target.mode == "cluster"
        self.client, self._sentinel = build_client(self.target, timeout)
        self._failures = 0
        self._open_until = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

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
        except _FAILURES as exc:
            self._record_failure(op, exc)
            raise StoreUnavailable(f"redis {op} failed: {type(exc).__name__}") from exc
        self._record_success()
        return result

    async def connect(self) -> None:
        """Learn the cluster's slot map before the first request (slower than one call's timeout),
        or start following the sentinels' choice of primary.

        A cluster that does not answer now is left to the first calls, as any outage would be.
        """
        if self._sentinel is not None and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._follow_primary())
        if not self.cluster:
            return
        cluster = cast("RedisCluster", self.client)
        try:
            await asyncio.wait_for(cluster.initialize(), timeout=max(self.timeout, CONNECT_TIMEOUT))
        except _FAILURES as exc:
            log.warning("redis_cluster_unreachable", error=type(exc).__name__, url=self.target.safe)

    async def _follow_primary(self) -> None:
        """Ask the sentinels which node is primary twice a second; on a change, drop our connections.

        A new connection always asks, but pooled ones stay where they are: after a switch-over
        (``SENTINEL FAILOVER``, a partition) the old primary may accept reads and writes for
        seconds before the sentinels demote it, and a gateway still talking to it would miss keys
        created since. redis-py's pool closes its connections to an old primary when the answer
        changes.
        """
        pool: Any = self.client.connection_pool
        while True:
            await asyncio.sleep(SENTINEL_CHECK_SECONDS)
            with contextlib.suppress(*_FAILURES):
                await asyncio.wait_for(pool.get_master_address(), timeout=max(self.timeout, 1.0))

    async def ping(self) -> bool:
        """True when Redis answers a PING within the timeout (does not touch the breaker)."""
        try:
            return bool(await asyncio.wait_for(self.client.ping(), timeout=self.timeout))
        except _FAILURES:
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
        for task in (self._probe, self._watch):
            if task is not None:
                task.cancel()
        await self.client.aclose()
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                await client.aclose()

    def info(self) -> dict[str, Any]:
        return {
            "degraded": self.degraded,
            "consecutive_failures": self._failures,
            "mode": self.target.mode,
        }


@contextlib.asynccontextmanager
async def open_redis(
    settings: Settings, *, call_timeout: float | None = None
) -> AsyncIterator[ResilientRedis | None]:
    """The one way the server and every CLI open Redis (None without ``GATEWAY_REDIS_URL``).

    ``call_timeout`` raises the per-call timeout (an operator command may wait longer than
    a request).
    """
    if not settings.redis_url:
        yield None
        return
    redis = ResilientRedis(
        settings.redis_url,
        timeout=max(settings.redis_timeout, call_timeout or 0.0),
        breaker_failures=settings.redis_breaker_failures,
        breaker_reset_seconds=settings.redis_breaker_reset_seconds,
    )
    try:
        await redis.connect()
        yield redis
    finally:
        await redis.aclose()
