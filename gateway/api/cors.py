"""CORS for browser apps: ``GATEWAY_CORS_ORIGINS`` lists the origins allowed to call ``/v1/*``.

Off by default (no header is ever added). A raw ASGI wrapper inside the request-context one, so
preflights get a request id and a log line like any answer, and error responses carry the CORS
headers too (a browser hides the body of a response without them, so the app could not read
the JSON error's ``code``). Preflights are answered here, before routing and before auth: a
browser never sends credentials on an ``OPTIONS``.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

CORS_PATH_PREFIX = "/v1/"
ALLOWED_METHODS = b"GET, POST, OPTIONS"
ALLOWED_HEADERS = b"authorization, content-type, idempotency-key, x-request-id, cache-control, traceparent"
EXPOSED_HEADERS = (
    b"x-request-id, x-cache, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, "
    b"ratelimit-policy"
)
PREFLIGHT_MAX_AGE = b"600"


class CORSMiddleware:
    """Answers preflights for allowed origins and adds ``Access-Control-*`` headers to their answers."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origin.rstrip("/").encode() for origin in origins if origin != "*")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(CORS_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        origin = next((value for name, value in scope["headers"] if name == b"origin"), None)
        allowed = origin is not None and (self.any_origin or origin in self.origins)
        if scope["method"] == "OPTIONS" and origin is not None and _requested_method(scope):
            await self._preflight(send, origin if allowed else None)
            return
        if not allowed or origin is None:
            await self.app(scope, receive, send)
            return
        headers = self._headers(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
            (b"vary", b"Origin"),
        ]

    async def _preflight(self, send: Send, origin: bytes | None) -> None:
        """204 with the grants for an allowed origin; 403 without them for any other."""
        headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if origin is not None:
            headers += self._headers(origin)
            headers += [
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ]
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 204 if origin else 403,
            "headers": headers,
        }
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(body)


def _requested_method(scope: Scope) -> bool:
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])
