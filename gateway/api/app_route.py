"""``POST /v1/qwen-vl``: the app contract (CONTRACT.md §1). Decodes, calls the pipeline, renders."""

from __future__ import annotations

import msgspec
from litestar import Response, post
from litestar.response import Stream

from gateway.api.asks import app_ask
from gateway.api.body import decode_json, read_body
from gateway.api.context import context_of
from gateway.api.openapi import SECURITY, answer, contract_statuses, error_responses, operation
from gateway.api.rendering import json_response, sse_response
from gateway.api.schemas import AppAnswer, AppError, AppStreamEnd, AppStreamText, QwenVLRequest
from gateway.api.types import AnyRequest, PrincipalDep, ServicesDep
from gateway.constants import ROUTE_APP
from gateway.serving.pipeline import serve
from gateway.serving.relay import relay_app
from gateway.upstream.wire import Usage


@post(
    ROUTE_APP,
    status_code=200,
    summary="Ask about an image",
    operation_id="qwenVl",
    operation_class=operation(
        QwenVLRequest,
        example="qwenVl",
        events=(AppStreamText, AppStreamEnd, AppError),
        events_note='With "stream": true: {"text"} deltas, one final {"code": 0, "usage", ...}, then '
        "data: [DONE]; an error after the stream began is one {code, message} event before [DONE].",
    ),
    security=SECURITY,
    responses={
        200: answer(AppAnswer, "The answer (JSON), or Server-Sent Events when stream is true."),
        **error_responses(AppError, *contract_statuses(404, 405)),
    },
)
async def qwen_vl(
    request: AnyRequest, services: ServicesDep, principal: PrincipalDep
) -> Response[bytes] | Stream:
    """One image (or a few) and a prompt in; ``{code, text, usage}`` out (or SSE with ``stream``)."""
    raw = await read_body(request, services.settings.max_body_bytes)
    ask = app_ask(decode_json(raw, QwenVLRequest), raw, request, principal, services)
    outcome = await serve(services, ask)
    context_of(request.scope).outcome = outcome
    if outcome.stream is not None:
        stream = outcome.stream
        relay = relay_app(
            stream.source,
            request_id=ask.request_id,
            route=ask.route,
            started=stream.started,
            on_done=stream.finish,
        )
        return await sse_response(relay, outcome)
    answer = outcome.answer
    assert answer is not None
    body = AppAnswer(
        text=answer.text,
        usage=answer.usage or Usage(),
        request_id=ask.request_id,
        model=outcome.model,
        finish_reason=answer.finish_reason,
        cached=outcome.cached,
    )
    return json_response(msgspec.json.encode(body), outcome)
