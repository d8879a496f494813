"""``POST /v1/qwen-vl``: the app contract (CONTRACT.md §1). Orchestrates; does no work itself."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar import Response, post
from litestar.response import Stream

from gateway import errors
from gateway.api.body import decode_json, read_body
from gateway.api.context import RequestContext, context_of
from gateway.api.openapi import body_operation
from gateway.api.types import AnyRequest, ServicesDep
from gateway.cache import CachedAnswer, CacheMode, KeyMaterial
from gateway.constants import CACHE_STATUS_HEADER, ROUTE_APP, TRACEPARENT_HEADER
from gateway.images import PreparedImage
from gateway.schemas import AppAnswer, QwenVLRequest
from gateway.serving.answers import (
    CachePlan,
    answer_once,
    cached_from_upstream,
    plan_cache,
    remember,
    replay_app_stream,
    stream_finisher,
    usage_of,
)
from gateway.serving.context import check_context
from gateway.serving.gate import Pass, estimate_tokens, text_tokens_lower
from gateway.serving.relay import SSE_HEADERS, primed, relay_app
from gateway.serving.services import Services
from gateway.serving.task import Task, build_chat_payload, resolve_task


@post(
    ROUTE_APP,
    status_code=200,
    summary="Ask about an image",
    operation_id="qwenVl",
    operation_class=body_operation(QwenVLRequest, "qwenVl"),
)
async def qwen_vl(request: AnyRequest, services: ServicesDep) -> Response[bytes] | Stream:
    """One image (or a few) and a prompt in; ``{code, text, usage}`` out (or SSE with ``stream``)."""
    ctx = context_of(request.scope)
    settings = services.settings
    body = await read_body(request, settings.max_body_bytes)
    req = decode_json(body, QwenVLRequest)
    principal = await services.gate.authenticate(request.headers, ROUTE_APP)
    ctx.key_name = principal.name
    refs = req.images()
    if not refs:
        raise errors.InvalidBody("field `image` needs at least one image", param="image")
    if len(refs) > settings.image_max_images:
        raise errors.TooManyImages(f"at most {settings.image_max_images} images per request", param="image")
    task = resolve_task(req, settings, services.devex.resolve_preset(principal, req.preset))
    model = await services.upstream.model()
    text_bytes = len(task.prompt.encode()) + len((task.system or "").encode())
    budget = task.pixel_budget or settings.image_pixel_budget
    admitted = await services.gate.admit(
        principal,
        estimated_tokens=estimate_tokens(
            text_bytes=text_bytes,
            messages=2 if task.system else 1,
            images=len(refs),
            pixel_budget=budget,
            max_tokens=task.sampling.max_tokens,
        ),
    )
    handed_over = False
    usage = None
    try:
        images = await services.intake.prepare(refs, pixel_budget=task.pixel_budget)
        if services.devex.precheck_wanted(req.precheck, task.preset):
            await services.devex.precheck(images)
        check_context(
            text_tokens=text_tokens_lower(text_bytes),
            images=images,
            max_tokens=task.sampling.max_tokens,
            max_model_len=services.upstream.max_model_len,
        )

        def payload() -> dict[str, object]:  # built only when the upstream is really asked
            return build_chat_payload(
                model=model,
                prompt=task.prompt,
                system=task.system,
                sampling=task.sampling,
                image_uris=[image.json_uri() for image in images],
                stream=req.stream,
            )

        material = KeyMaterial(
            image_hashes=[image.sha256 for image in images],
            messages={"prompt": task.prompt},
            model=model,
            preset=task.cache_tag,
            sampling=task.sampling.as_fields(),
        )
        plan = plan_cache(
            services,
            request.headers,
            owner=principal.name,
            material=material,
            temperature=task.sampling.temperature,
            opt_in=task.cache_opt_in,
        )
        trace = request.headers.get(TRACEPARENT_HEADER)
        affinity = images[0].sha256  # the replica that encoded this photo already has it cached
        if req.stream:
            handed_over = True
            return await _stream(
                services, ctx, admitted, plan, payload, trace, (task, req.prompt, images, model)
            )

        async def compute() -> CachedAnswer:
            answer = await services.upstream.chat(
                payload(), request_id=ctx.request_id, trace=trace, affinity=affinity
            )
            ctx.replica = answer.replica
            return cached_from_upstream(answer, keep_raw=False)

        answer, status = await answer_once(
            services, plan, compute, headers=request.headers, owner=principal.name, body=body
        )
        ctx.cache = status
        cached = status in ("HIT", "COALESCED")
        usage = None if cached else usage_of(answer)
        ctx.usage = usage
        result = AppAnswer(
            text=answer.text,
            usage=usage_of(answer),
            request_id=ctx.request_id,
            model=answer.model or model,
            finish_reason=answer.finish_reason,
            cached=cached,
        )
        remember(
            services,
            ctx,
            task=task,
            client_prompt=req.prompt,
            answer=answer.text,
            model=result.model,
            images=images,
        )
        headers = {**admitted.headers(), CACHE_STATUS_HEADER: status}
        return Response(content=msgspec.json.encode(result), media_type="application/json", headers=headers)
    finally:
        if not handed_over:
            await admitted.settle(usage)


async def _stream(
    services: Services,
    ctx: RequestContext,
    admitted: Pass,
    plan: CachePlan,
    payload: Callable[[], dict[str, object]],
    trace: str | None,
    about: tuple[Task, str | None, list[PreparedImage], str],
) -> Stream:
    """SSE answer: a replay of a cached answer, or the upstream stream relayed (and then stored)."""
    task, client_prompt, images, model = about
    affinity = images[0].sha256 if images else None
    headers = {**SSE_HEADERS, **admitted.headers()}
    try:
        hit = await services.cache.get(plan.key) if plan.key and plan.mode is CacheMode.USE else None
        if hit is not None:
            ctx.cache = "HIT"
            await admitted.settle(None)
            remember(
                services,
                ctx,
                task=task,
                client_prompt=client_prompt,
                answer=hit.text,
                model=hit.model,
                images=images,
            )
            return Stream(
                replay_app_stream(hit, ctx.request_id),
                media_type="text/event-stream",
                headers={**headers, CACHE_STATUS_HEADER: "HIT"},
            )
        stream = await services.upstream.open_stream(
            payload(), request_id=ctx.request_id, trace=trace, affinity=affinity
        )
    except BaseException:
        await admitted.settle(None)
        raise
    ctx.replica = stream.replica
    ctx.cache = "MISS" if plan.active else "BYPASS"

    def keep(text: str, answered_by: str) -> None:
        remember(
            services,
            ctx,
            task=task,
            client_prompt=client_prompt,
            answer=text,
            model=answered_by,
            images=images,
        )

    done = stream_finisher(services, ctx, admitted, plan, model, keep)
    relay = relay_app(stream, request_id=ctx.request_id, route=ctx.route, started=ctx.started, on_done=done)
    return Stream(
        await primed(relay),
        media_type="text/event-stream",
        headers={**headers, CACHE_STATUS_HEADER: ctx.cache},
    )
