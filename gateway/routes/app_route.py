"""``POST /v1/qwen-vl``: the app contract (CONTRACT.md §1). Orchestrates; does no work itself."""

from __future__ import annotations

import msgspec
from litestar import Response, post
from litestar.response import Stream

from gateway import errors
from gateway.chat import app_answer, build_chat_payload, resolve_sampling
from gateway.constants import ROUTE_APP, TRACEPARENT_HEADER
from gateway.http.body import decode_json, read_body
from gateway.http.context import context_of
from gateway.http.types import AnyRequest
from gateway.schemas import QwenVLRequest
from gateway.services import ServicesDep
from gateway.streaming import SSE_HEADERS, primed, relay_app


@post(ROUTE_APP, status_code=200, summary="Ask about an image", operation_id="qwenVl")
async def qwen_vl(request: AnyRequest, services: ServicesDep) -> Response[bytes] | Stream:
    """One image (or a few) and a prompt in; ``{code, text, usage}`` out."""
    ctx = context_of(request.scope)
    settings = services.settings
    body = await read_body(request, settings.max_body_bytes)
    req = decode_json(body, QwenVLRequest)
    if not req.prompt:
        raise errors.InvalidBody("field `prompt` is required (a non-empty string)", param="prompt")
    refs = req.images()
    if not refs:
        raise errors.InvalidBody("field `image` needs at least one image", param="image")
    sampling = resolve_sampling(req, settings)
    images = await services.intake.prepare(refs)
    model = await services.upstream.model()
    payload = build_chat_payload(
        model=model,
        prompt=req.prompt,
        image_uris=[image.data_uri() for image in images],
        sampling=sampling,
        stream=req.stream,
    )
    trace = request.headers.get(TRACEPARENT_HEADER)
    if req.stream:
        stream = await services.upstream.open_stream(payload, request_id=ctx.request_id, trace=trace)
        ctx.replica = stream.replica
        relay = relay_app(stream, request_id=ctx.request_id, route=ctx.route, started=ctx.started)
        return Stream(await primed(relay), media_type="text/event-stream", headers=SSE_HEADERS)
    answer = await services.upstream.chat(payload, request_id=ctx.request_id, trace=trace)
    ctx.replica = answer.replica
    result = app_answer(answer.completion, request_id=ctx.request_id, model=model)
    return Response(content=msgspec.json.encode(result), media_type="application/json")
