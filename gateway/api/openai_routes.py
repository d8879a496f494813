"""OpenAI-compatible routes (CONTRACT.md §3): ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.response import Stream

from gateway.api.asks import openai_ask
from gateway.api.body import decode_json, read_body
from gateway.api.context import context_of
from gateway.api.openai_body import include_usage
from gateway.api.openapi import CHAT_NOTES, SECURITY, answer, contract_statuses, error_responses, operation
from gateway.api.rendering import json_response, sse_response
from gateway.api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Model,
    ModelList,
    OpenAIError,
)
from gateway.api.types import AnyRequest, PrincipalDep, ServicesDep
from gateway.constants import ROUTE_CHAT, ROUTE_MODELS
from gateway.serving.answers import completion_json
from gateway.serving.pipeline import serve
from gateway.serving.relay import relay_openai


@post(
    ROUTE_CHAT,
    status_code=200,
    summary="OpenAI chat completions",
    operation_id="chatCompletions",
    operation_class=operation(
        ChatCompletionRequest,
        notes=CHAT_NOTES,
        example="chatCompletions",
        events=(ChatCompletionChunk, OpenAIError),
        events_note="With stream: true, each data: line is a chat.completion.chunk; data: [DONE] ends it. "
        'An error after the stream began is one {"error": {...}} event.',
    ),
    security=SECURITY,
    responses={
        200: answer(ChatCompletion, "A chat.completion, or Server-Sent Events when stream is true."),
        **error_responses(OpenAIError, *contract_statuses(405)),
    },
)
async def chat_completions(
    request: AnyRequest, services: ServicesDep, principal: PrincipalDep
) -> Response[bytes] | Stream:
    """The OpenAI wire format, with the gateway's auth, image intake, limits, cache and metrics."""
    raw = await read_body(request, services.settings.max_body_bytes)
    body = decode_json(raw, dict[str, Any])
    requested = body.get("model")
    group = services.models.resolve(requested if isinstance(requested, str) else None, owner=principal.name)
    ask = openai_ask(body, raw, request, principal, services, await group.client.model(), group.aliases)
    outcome = await serve(services, ask)
    context_of(request.scope).outcome = outcome
    if outcome.stream is not None:
        stream = outcome.stream
        relay = relay_openai(
            stream.source,
            route=ask.route,
            started=stream.started,
            include_usage=include_usage(body),
            on_done=stream.finish,
        )
        return await sse_response(relay, outcome)
    assert outcome.answer is not None
    return json_response(completion_json(outcome.answer), outcome)


@get(
    ROUTE_MODELS,
    summary="Models served",
    operation_id="listModels",
    operation_class=operation(),
    security=SECURITY,
    responses={
        200: answer(ModelList, "The served model and its aliases (OpenAI's model list)."),
        **error_responses(OpenAIError, 401, 403, 429, 503),
    },
)
async def list_models(services: ServicesDep, principal: PrincipalDep) -> Response[bytes]:
    """Every served model and its aliases that this key may use, in OpenAI's list shape."""
    created = int(time.time())
    data: list[Model] = []
    for group in services.models.groups:
        model = group.model or await group.client.model()
        max_len = group.client.max_model_len
        names = [model, *(alias for alias in group.aliases if alias != model)]
        if not any(principal.allows_model(name) for name in names):
            continue
        data += [Model(id=name, created=created, root=model, max_model_len=max_len) for name in names]
    return Response(content=msgspec.json.encode(ModelList(data=data)), media_type="application/json")
