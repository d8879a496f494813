"""OpenAI-compatible routes (CONTRACT.md §3): ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.response import Stream

from gateway.api.body import decode_json, read_body
from gateway.api.context import context_of
from gateway.api.openai_body import ChatRequest, attach_images, parse_chat_request
from gateway.api.types import AnyRequest, ServicesDep
from gateway.cache import CachedAnswer, CacheMode, KeyMaterial
from gateway.constants import CACHE_STATUS_HEADER, ROUTE_CHAT, ROUTE_MODELS, TRACEPARENT_HEADER
from gateway.serving.answers import (
    answer_once,
    cached_from_upstream,
    completion_json,
    plan_cache,
    remember,
    replay_openai_stream,
    stream_finisher,
    usage_of,
)
from gateway.serving.context import check_context
from gateway.serving.gate import estimate_tokens, text_tokens_lower
from gateway.serving.relay import SSE_HEADERS, primed, relay_openai

_NOT_IN_KEY = ("stream", "stream_options", "model", "user")


def _key_material(chat: ChatRequest, hashes: list[str], model: str) -> KeyMaterial:
    """Everything that changes the answer; image parts stand as their content hashes."""
    digests = iter(hashes)

    def part_key(part: Any) -> Any:
        if isinstance(part, dict) and part.get("type") == "image_url":
            return {"type": "image_url", "sha256": next(digests)}
        return part

    def message_key(message: dict[str, Any]) -> dict[str, Any]:
        content = message.get("content")
        if isinstance(content, list):
            return {**message, "content": [part_key(part) for part in content]}
        return message

    body = {name: value for name, value in chat.body.items() if name not in _NOT_IN_KEY}
    body["messages"] = [message_key(message) for message in chat.body["messages"]]
    return KeyMaterial(image_hashes=hashes, messages=body, model=model)


@post(ROUTE_CHAT, status_code=200, summary="OpenAI chat completions", operation_id="chatCompletions")
async def chat_completions(request: AnyRequest, services: ServicesDep) -> Response[bytes] | Stream:
    """The OpenAI wire format, with the gateway's auth, image intake, limits, cache and metrics."""
    ctx = context_of(request.scope)
    settings = services.settings
    raw = await read_body(request, settings.max_body_bytes)
    principal = await services.gate.authenticate(request.headers, ROUTE_CHAT)
    ctx.key_name = principal.name
    body = decode_json(raw, dict[str, Any])
    model = await services.upstream.model()
    chat = parse_chat_request(
        body, settings=settings, served_model=model, aliases=settings.upstream_model_aliases
    )
    estimate = estimate_tokens(
        text_bytes=chat.text_chars * 3,
        messages=len(body["messages"]),
        images=len(chat.image_parts),
        pixel_budget=settings.image_pixel_budget,
        max_tokens=chat.max_tokens,
    )
    admitted = await services.gate.admit(principal, estimated_tokens=estimate)
    handed_over = False
    usage = None
    try:
        images = await services.intake.prepare(chat.image_refs()) if chat.image_parts else []
        check_context(
            text_tokens=text_tokens_lower(chat.text_chars),
            images=images,
            max_tokens=chat.max_tokens,
            max_model_len=services.upstream.max_model_len,
        )

        def upstream_body() -> dict[str, Any]:  # the images' data goes in only when vLLM is asked
            return attach_images(chat, [image.json_uri() for image in images])

        n = body.get("n", 1)
        plan = plan_cache(
            services,
            request.headers,
            owner=principal.name,
            material=_key_material(chat, [i.sha256 for i in images], model),
            temperature=body.get("temperature"),
            n=n if isinstance(n, int) else 1,
        )
        trace = request.headers.get(TRACEPARENT_HEADER)
        affinity = images[0].sha256 if images else None

        def keep(text: str, answered_by: str) -> None:
            remember(
                services,
                ctx,
                task=None,
                client_prompt=chat.last_user_text(),
                answer=text,
                model=answered_by,
                images=images,
            )

        headers = admitted.headers()
        if chat.stream:
            hit = await services.cache.get(plan.key) if plan.key and plan.mode is CacheMode.USE else None
            if hit is not None:
                ctx.cache = "HIT"
                replay = replay_openai_stream(hit, include_usage=chat.include_usage)
                return Stream(
                    replay,
                    media_type="text/event-stream",
                    headers={**SSE_HEADERS, **headers, CACHE_STATUS_HEADER: "HIT"},
                )
            stream = await services.upstream.open_stream(
                upstream_body(), request_id=ctx.request_id, trace=trace, affinity=affinity
            )
            ctx.replica, ctx.cache = stream.replica, ("MISS" if plan.active else "BYPASS")
            handed_over = True

            done = stream_finisher(services, ctx, admitted, plan, model, keep)
            relay = relay_openai(
                stream, route=ctx.route, started=ctx.started, include_usage=chat.include_usage, on_done=done
            )
            return Stream(
                await primed(relay),
                media_type="text/event-stream",
                headers={**SSE_HEADERS, **headers, CACHE_STATUS_HEADER: ctx.cache},
            )

        async def compute() -> CachedAnswer:
            answer = await services.upstream.chat(
                upstream_body(), request_id=ctx.request_id, trace=trace, affinity=affinity
            )
            ctx.replica = answer.replica
            return cached_from_upstream(answer, keep_raw=True)

        answer, status = await answer_once(
            services, plan, compute, headers=request.headers, owner=principal.name, body=raw
        )
        ctx.cache = status
        usage = ctx.usage = None if status in ("HIT", "COALESCED") else usage_of(answer)
        keep(answer.text, answer.model or model)
        return Response(
            content=completion_json(answer),
            media_type="application/json",
            headers={**headers, CACHE_STATUS_HEADER: status},
        )
    finally:
        if not handed_over:
            await admitted.settle(usage)


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
async def list_models(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    """The served model and its short aliases, in OpenAI's list shape."""
    principal = await services.gate.authenticate(request.headers, ROUTE_MODELS)
    context_of(request.scope).key_name = principal.name
    model = await services.upstream.model()
    created = int(time.time())
    names = [model, *(alias for alias in services.settings.upstream_model_aliases if alias != model)]
    max_len = services.upstream.max_model_len
    data = [_Model(id=name, created=created, root=model, max_model_len=max_len) for name in names]
    return Response(content=msgspec.json.encode(_ModelList(data=data)), media_type="application/json")
