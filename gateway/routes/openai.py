"""OpenAI-compatible routes (CONTRACT.md §3): ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.response import Stream

from gateway.constants import ROUTE_CHAT, ROUTE_MODELS, TRACEPARENT_HEADER
from gateway.http.body import decode_json, read_body
from gateway.http.context import context_of
from gateway.http.types import AnyRequest
from gateway.openai_compat import attach_images, parse_chat_request
from gateway.services import ServicesDep
from gateway.streaming import SSE_HEADERS, primed, relay_openai


@post(ROUTE_CHAT, status_code=200, summary="OpenAI chat completions", operation_id="chatCompletions")
async def chat_completions(request: AnyRequest, services: ServicesDep) -> Response[bytes] | Stream:
    """The OpenAI wire format, with the gateway's image intake, limits and metrics."""
    ctx = context_of(request.scope)
    settings = services.settings
    body = decode_json(await read_body(request, settings.max_body_bytes), dict[str, Any])
    model = await services.upstream.model()
    chat = parse_chat_request(
        body, settings=settings, served_model=model, aliases=settings.upstream_model_aliases
    )

    async def to_uris(refs: list[str]) -> list[str]:
        return [image.data_uri() for image in await services.intake.prepare(refs)]

    await attach_images(chat, to_uris)
    trace = request.headers.get(TRACEPARENT_HEADER)
    if chat.stream:
        stream = await services.upstream.open_stream(chat.body, request_id=ctx.request_id, trace=trace)
        ctx.replica = stream.replica
        relay = relay_openai(stream, route=ctx.route, started=ctx.started, include_usage=chat.include_usage)
        return Stream(await primed(relay), media_type="text/event-stream", headers=SSE_HEADERS)
    answer = await services.upstream.chat(chat.body, request_id=ctx.request_id, trace=trace)
    ctx.replica = answer.replica
    return Response(content=answer.raw, media_type="application/json")


class _Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str = "vlgw"
    root: str | None = None
    max_model_len: int | None = None
    object: str = "model"


class _ModelList(msgspec.Struct):
    data: list[_Model]
    object: str = "list"


@get(ROUTE_MODELS, summary="Models served", operation_id="listModels")
async def list_models(services: ServicesDep) -> Response[bytes]:
    """The served model and its short aliases, in OpenAI's list shape."""
    model = await services.upstream.model()
    created = int(time.time())
    names = [model, *(alias for alias in services.settings.upstream_model_aliases if alias != model)]
    data = [
        _Model(id=name, created=created, root=model, max_model_len=services.upstream.max_model_len)
        for name in names
    ]
    return Response(content=msgspec.json.encode(_ModelList(data=data)), media_type="application/json")
