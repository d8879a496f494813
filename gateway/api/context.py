"""Per-request context: the request id, one access log line and the request metrics.

A raw ASGI wrapper around the whole Litestar app (outside its router), so 404s, 405s and
exceptions get an ``X-Request-Id`` header, a log line and a metric like every other answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from gateway import metrics
from gateway.constants import REQUEST_ID_ALLOWED, REQUEST_ID_HEADER, REQUEST_ID_MAX_LENGTH
from gateway.ops.tracing import Tracing

if TYPE_CHECKING:
    from gateway.serving.outcome import Outcome

log = structlog.get_logger("gateway.access")
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_UNLOGGED_PATHS = frozenset({"/healthz", "/metrics"})


@dataclass(slots=True)
class RequestContext:
    """The access line's facts: set here on arrival, then each written once, by one owner: the
    principal by authentication, the outcome by the route, the status and code by the response."""

    request_id: str
    route: str
    started: float
    status: int = 0
    code: int = 0
    key_name: str | None = None
    outcome: Outcome | None = None


def _sane_request_id(raw: bytes) -> str | None:
    if not raw or len(raw) > REQUEST_ID_MAX_LENGTH:
        return None
    text = raw.decode("latin-1")
    return text if all(ch in REQUEST_ID_ALLOWED for ch in text) else None


def _normalise(path: str) -> str:
    if "//" not in path and (len(path) == 1 or not path.endswith("/")):
        return path  # the common case costs one scan
    return "/" + "/".join(part for part in path.split("/") if part)


def context_of(scope: Scope) -> RequestContext:
    """The context the middleware attached to this request."""
    ctx: RequestContext = scope["state"]["ctx"]
    return ctx


class RequestContextMiddleware:
    """Assigns the request id, adds the header, logs one line and counts the request."""

    def __init__(
        self,
        app: ASGIApp,
        known_routes: frozenset[str],
        on_finish: Callable[[RequestContext], None] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.known_routes = known_routes
        self.on_finish = on_finish
        self.tracing = tracing or Tracing.disabled()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = None
        traceparent: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                request_id = _sane_request_id(value)
            elif name == b"traceparent":
                traceparent["traceparent"] = value.decode("latin-1")
        request_id = request_id or uuid.uuid4().hex
        # One spelling of each path from here on ('/v1/qwen-vl/', '//v1/qwen-vl' -> '/v1/qwen-vl'):
        # the router, auth's route check, usage and metrics all see the same route.
        path = scope["path"] = _normalise(scope["path"])
        route = path if path in self.known_routes else "other"
        ctx = RequestContext(request_id=request_id, route=route, started=time.perf_counter())
        scope.setdefault("state", {})["ctx"] = ctx
        header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        metrics.INFLIGHT.labels(route=route).inc()
        span = self.tracing.request(
            f"{scope['method']} {route}", traceparent, route=route, request_id=request_id
        )
        try:
            with span:
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if self.tracing.enabled:
                        self._annotate(ctx)
        finally:
            metrics.INFLIGHT.labels(route=route).dec()
            self._finish(ctx, scope)
            if self.on_finish is not None:
                self.on_finish(ctx)
            structlog.contextvars.clear_contextvars()

    def _annotate(self, ctx: RequestContext) -> None:
        outcome = ctx.outcome
        self.tracing.annotate(
            **{"http.status_code": ctx.status},
            code=ctx.code or (ctx.status * 100 + 1 if ctx.status >= 400 else 0),
            key=ctx.key_name,
            cache=outcome.cache if outcome else None,
            replica=outcome.replica if outcome else None,
        )

    @staticmethod
    def _finish(ctx: RequestContext, scope: HTTPScope) -> None:
        seconds = time.perf_counter() - ctx.started
        code = ctx.code = ctx.code if ctx.code or ctx.status < 400 else ctx.status * 100 + 1
        metrics.REQUESTS.labels(route=ctx.route, code=str(code)).inc()
        metrics.REQUEST_DURATION.labels(route=ctx.route).observe(seconds)
        if scope["path"] in _UNLOGGED_PATHS:
            return
        outcome = ctx.outcome
        extra = {"prompt": outcome.logged_prompt} if outcome is not None and outcome.logged_prompt else {}
        log.info(
            "request",
            method=scope["method"],
            route=ctx.route,
            status=ctx.status,
            code=code,
            latency_ms=round(seconds * 1000, 2),
            key=ctx.key_name,
            cache=outcome.cache if outcome else None,
            replica=outcome.replica if outcome else None,
            **extra,
        )
