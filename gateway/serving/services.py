"""Everything a request needs, opened once in the app's lifespan and handed to handlers by DI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.auth import build_key_manager
from gateway.cache import IdempotencyStore, ResponseCache
from gateway.devex import DevEx, open_devex
from gateway.images import ImageIntake
from gateway.limits import Limiter
from gateway.ops.stores import open_stores
from gateway.ops.tracing import Tracing
from gateway.serving.gate import Gate
from gateway.settings import Settings
from gateway.store.redis import ResilientRedis
from gateway.upstream.client import UpstreamClient, build_http_client, build_session
from gateway.upstream.groups import ModelRouter
from gateway.video import VideoIntake

log = structlog.get_logger("gateway")


@dataclass
class Services:
    """The gateway's clients and stores; one instance per worker process."""

    settings: Settings
    models: ModelRouter  # every model group; the first answers requests that name no model
    intake: ImageIntake
    videos: VideoIntake
    gate: Gate
    cache: ResponseCache
    idempotency: IdempotencyStore
    devex: DevEx
    redis: ResilientRedis | None = None
    tracing: Tracing = field(default_factory=Tracing.disabled)
    draining: bool = False

    @property
    def upstream(self) -> UpstreamClient:
        """The first model group's client (the one a request that names no model goes to)."""
        return self.models.default.client

    async def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` reports: each dependency and an overall verdict."""
        pool = self.upstream.pool
        upstream_ok = self.models.ready()
        model_known = pool.model is not None
        if self.redis is None:
            store: dict[str, Any] = {"backend": "embedded", "ok": True}
        else:
            store = {"backend": "redis", "ok": await self.redis.ping(), **self.redis.info()}
        checks = {
            "upstream": upstream_ok,
            "model": model_known,
            "store": store["ok"],
            "draining": not self.draining,
        }
        return {
            "ready": all(checks.values()),
            "not_ready": [name for name, ok in checks.items() if not ok],
            "upstream": self.models.snapshot(),
            "model": pool.model,
            "store": store,
        }


@contextlib.asynccontextmanager
async def open_services(settings: Settings, tracing: Tracing | None = None) -> AsyncIterator[Services]:
    """Open the HTTP pool, Redis and the rest; close them all on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        http = build_http_client(settings)
        stack.push_async_callback(http.aclose)
        session = build_session(settings)
        stack.push_async_callback(session.close)
        models = ModelRouter(settings, http, session)
        await models.start()
        stack.push_async_callback(models.aclose)
        stores = await stack.enter_async_context(open_stores(settings))
        redis, db = stores.redis, stores.db
        intake = ImageIntake(settings)
        stack.push_async_callback(intake.aclose)
        videos = VideoIntake(settings)
        stack.push_async_callback(videos.aclose)
        keys = build_key_manager(settings, redis, db)
        stack.push_async_callback(keys.aclose)
        devex = await stack.enter_async_context(open_devex(settings, redis, db))
        services = Services(
            settings=settings,
            models=models,
            intake=intake,
            videos=videos,
            gate=Gate(keys, Limiter.from_settings(settings, redis)),
            cache=ResponseCache.from_settings(settings, redis),
            idempotency=IdempotencyStore.from_settings(settings, redis),
            devex=devex,
            redis=redis,
            tracing=tracing or Tracing.disabled(),
        )
        if settings.auth_disabled:
            log.warning("auth_disabled", detail="GATEWAY_AUTH_DISABLED=true: every caller is let through")
        yield services
