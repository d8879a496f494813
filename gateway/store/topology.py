"""``GATEWAY_REDIS_URL``: its forms (one node, Sentinel, Cluster; TLS), and the client for each.

Parsing opens nothing, so settings validation can check the URL at start-up; building the
client connects lazily (a cluster learns its slots in :meth:`ResilientRedis.connect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

MAX_CONNECTIONS = 256
# TLS settings a sentinel or cluster URL may carry as query parameters (a single-node URL takes
# these and any other redis-py option itself).
TLS_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
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


def build_client(target: RedisTarget, timeout: float) -> tuple[aioredis.Redis, Sentinel | None]:
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
