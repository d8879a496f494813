"""Redis with a short timeout on every call and a circuit breaker, on one node, Sentinel or Cluster.

Every package that talks to Redis goes through :class:`ResilientRedis.run`, which turns any
Redis failure (error, timeout, open breaker) into :class:`StoreUnavailable`. Callers decide
their fallback (local limits, cache bypass, cached key lookups); this module only decides
*whether* Redis may be asked. After ``breaker_failures`` consecutive failures the breaker opens:
calls fail at once, and a background probe pings Redis until it answers, so recovery does not
wait for traffic.

:func:`open_redis` is the one place a Redis client is built from ``GATEWAY_REDIS_URL`` (server
and every CLI), for each form of the URL (docs/redis.md):

* ``redis://[user:password@]host:port[/db]`` and ``rediss://...`` (TLS), ``unix://...``
* ``redis+sentinel://[user:password@]host:port,host:port/service[/db]`` (``rediss+sentinel`` for
  TLS to the data nodes): the primary is asked of the sentinels on every new connection, so a
  failover is followed without a restart
* ``redis+cluster://[user:password@]host:port,host:port`` (``rediss+cluster``): Redis Cluster;
  every multi-key script and command keeps its keys under one hash tag (see :mod:`gateway.store.keys`)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisClusterException, RedisError

from gateway import metrics

if TYPE_CHECKING:
    from gateway.settings import Settings

T = TypeVar("T")
log = structlog.get_logger("gateway.store")


class StoreUnavailable(Exception):
    """Redis could not be asked or did not answer in time; use the fallback."""


# What a Redis call can raise when Redis is away; RedisClusterException ("no reachable node") is
# not a RedisError.
_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)
MAX_CONNECTIONS = 256
# TLS settings a sentinel or cluster URL may carry as query parameters (a single-node URL takes
# these and any other redis-py option itself).
TLS_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
CONNECT_TIMEOUT = 5.0  # seconds to learn a cluster's slot map at start-up
SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class InvalidRedisUrl(ValueError):
    """``GATEWAY_REDIS_URL`` is not one of the forms in docs/redis.md."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed ``GATEWAY_REDIS_URL``: what to connect to, without opening anything."""

    mode: str  # "single", "sentinel" or "cluster"
    url: str  # the URL itself (for "single", handed to redis-py as is)
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seed nodes
    service: str = ""  # the sentinel service (master group) name
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls_options: tuple[tuple[str, Any], ...] = ()  # ssl_ca_certs, ssl_certfile, ... for redis-py

    @property
    def safe(self) -> str:
        """The URL without its credentials (for logs)."""
        parts = urlsplit(self.url)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()


def _nodes(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in netloc.rpartition("@")[2].split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise InvalidRedisUrl(f"GATEWAY_REDIS_URL: {item!r} in {url!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """Parse any accepted ``GATEWAY_REDIS_URL`` form; :class:`InvalidRedisUrl` names what is wrong."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        forms = ", ".join(f"{s}://" for s in SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES)
        raise InvalidRedisUrl(f"GATEWAY_REDIS_URL must start with one of {forms}")
    if scheme in SCHEMES:
        return RedisTarget("single", url, tls=scheme == "rediss")
    before_query, _, query = rest.partition("?")
    netloc, _, path = before_query.partition("/")
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    user, _, password = userinfo.partition(":")
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    unknown = set(params) - {"sentinel_password", *TLS_PARAMS}
    if unknown:
        raise InvalidRedisUrl(f"GATEWAY_REDIS_URL: unknown parameter(s) {', '.join(sorted(unknown))}")
    tls_options = tuple(
        (name, params[name].lower() in ("1", "true", "yes") if name == "ssl_check_hostname" else params[name])
        for name in TLS_PARAMS
        if name in params
    )
    common: dict[str, Any] = {
        "nodes": _nodes(netloc, url),
        "tls": scheme.startswith("rediss"),
        "username": unquote(user) or None,
        "password": unquote(password) or None,
        "sentinel_password": params.get("sentinel_password"),
        "tls_options": tls_options,
    }
    segments = [unquote(p) for p in path.split("/") if p]
    if scheme in CLUSTER_SCHEMES:
        if segments and segments != ["0"]:
            raise InvalidRedisUrl("GATEWAY_REDIS_URL: a Redis Cluster has only database 0")
        return RedisTarget("cluster", url, **common)
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise InvalidRedisUrl(
            "GATEWAY_REDIS_URL: a sentinel URL is redis+sentinel://host:port,host:port/service[/db]"
        )
    db = int(segments[1]) if len(segments) == 2 else 0
    return RedisTarget("sentinel", url, service=segments[0], db=db, **common)


def _client(target: RedisTarget, timeout: float) -> tuple[aioredis.Redis, Sentinel | None]:
    """The redis-py client for ``target`` (and the Sentinel manager to close with it)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 0,
    }
    if target.mode == "single":
        client = aioredis.Redis.from_url(
            target.url, retry_on_timeout=False, max_connections=MAX_CONNECTIONS, **options
        )
        return client, None
    if target.mode == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=target.tls,
            max_connections=MAX_CONNECTIONS,
            username=target.username,
            password=target.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **dict(target.tls_options),
        )
        # RedisCluster speaks the same commands as Redis (routing each by its key's slot); the
        # callers' type is the single-node client's, which is what they program against.
        return cast("aioredis.Redis", cluster), None
    tls = {"ssl": True, **dict(target.tls_options)} if target.tls else {}
    sentinel_options = {**options, **tls, "password": target.sentinel_password}
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call]
    primary = sentinel.master_for(
        target.service,
        db=target.db,
        max_connections=MAX_CONNECTIONS,
        retry_on_timeout=False,
        username=target.username,
        password=target.password,
        **tls,
    )
    return primary, sentinel


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
        self.client, self._sentinel = _client(self.target, timeout)
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
        except _FAILURES as exc:
            self._record_failure(op, exc)
            raise StoreUnavailable(f"redis {op} failed: {type(exc).__name__}") from exc
        self._record_success()
        return result

    async def connect(self) -> None:
        """Learn the cluster's slot map before the first request (slower than one call's timeout).

        Nothing to do for one node or Sentinel (each connection finds its node itself). A cluster
        that does not answer now is left to the first calls, as any outage would be.
        """
        if not self.cluster:
            return
        cluster = cast("RedisCluster", self.client)
        try:
            await asyncio.wait_for(cluster.initialize(), timeout=max(self.timeout, CONNECT_TIMEOUT))
        except _FAILURES as exc:
            log.warning("redis_cluster_unreachable", error=type(exc).__name__, url=self.target.safe)

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
        if self._probe is not None:
            self._probe.cancel()
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
    a request). A key store written before hash tags is moved to today's layout on the way in.
    """
    if not settings.redis_url:
        yield None
        return
    from gateway.store.layout import migrate_legacy_layout  # layout imports this module

    redis = ResilientRedis(
        settings.redis_url,
        timeout=max(settings.redis_timeout, call_timeout or 0.0),
        breaker_failures=settings.redis_breaker_failures,
        breaker_reset_seconds=settings.redis_breaker_reset_seconds,
    )
    try:
        await redis.connect()
        await migrate_legacy_layout(redis)
        yield redis
    finally:
        await redis.aclose()
