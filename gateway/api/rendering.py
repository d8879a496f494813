"""Rendering an outcome's headers and bodies: JSON, or SSE that starts once the first bytes exist."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar import Response
from litestar.response import Stream

from gateway.constants import CACHE_STATUS_HEADER
from gateway.serving.outcome import Outcome
from gateway.serving.relay import SSE_HEADERS, primed


def json_response(body: bytes, outcome: Outcome) -> Response[bytes]:
    headers = {**outcome.headers, CACHE_STATUS_HEADER: outcome.cache}
    return Response(content=body, media_type="application/json", headers=headers)


async def sse_response(relay: AsyncIterator[bytes], outcome: Outcome) -> Stream:
    """The relay as SSE; an error before its first bytes is still a plain JSON error response."""
    headers = {**SSE_HEADERS, **outcome.headers, CACHE_STATUS_HEADER: outcome.cache}
    return Stream(await primed(relay), media_type="text/event-stream", headers=headers)
