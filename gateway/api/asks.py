"""The two thin adapters: an app request and an OpenAI request, each turned into one :class:`Ask`."""

from __future__ import annotations

from typing import Any

from gateway import errors
from gateway.api.context import context_of
from gateway.api.openai_body import parse_chat, sampling_of
from gateway.api.schemas import QwenVLRequest
from gateway.api.types import AnyRequest
from gateway.auth import Principal
from gateway.cache import fingerprint, parse_cache_control, validate_idempotency_key
from gateway.constants import IDEMPOTENCY_KEY_HEADER, TRACEPARENT_HEADER
from gateway.serving.ask import Ask, Idempotency, Prompt
from gateway.serving.services import Services
from gateway.serving.task import resolve_task


def _request_facts(request: AnyRequest, raw: bytes, principal: Principal) -> dict[str, Any]:
    """What every route's ask carries from the HTTP request: ids, headers, the body's fingerprint."""
    ctx = context_of(request.scope)
    headers = request.headers
    idempotency_key = headers.get(IDEMPOTENCY_KEY_HEADER)
    return {
        "principal": principal,
        "route": ctx.route,
        "request_id": ctx.request_id,
        "started": ctx.started,
        "cache_control": parse_cache_control(headers.get("cache-control")),
        "idempotency": None
        if idempotency_key is None
        else Idempotency(validate_idempotency_key(idempotency_key), fingerprint(raw)),
        "trace": headers.get(TRACEPARENT_HEADER),
    }


def app_ask(
    req: QwenVLRequest, raw: bytes, request: AnyRequest, principal: Principal, services: Services
) -> Ask:
    """``POST /v1/qwen-vl``: the preset's template and defaults, then the client's values."""
    refs = req.images()
    if req.video is not None:  # the schema has made `video` and `image` exclusive
        if not req.video:
            raise errors.InvalidBody("field `video` must be a non-empty string", param="video")
    elif not refs:
        raise errors.InvalidBody("field `image` needs at least one image", param="image")
    settings = services.settings
    task = resolve_task(req, settings, services.devex.resolve_preset(principal, req.preset))
    return Ask(
        question=Prompt(task.prompt, task.system, req.prompt),
        images=tuple(refs),
        video=req.video,
        preset=task.preset,
        sampling=task.sampling,
        pixel_budget=task.pixel_budget,
        precheck=req.precheck,
        stream=req.stream,
        model=req.model,
        # CONTRACT.md §1: identical requests come from the cache whatever the temperature.
        any_temperature=settings.cache_app_any_temperature or task.cache_opt_in,
        **_request_facts(request, raw, principal),
    )


def openai_ask(
    body: dict[str, Any],
    raw: bytes,
    request: AnyRequest,
    principal: Principal,
    services: Services,
    model: str,
    aliases: tuple[str, ...] = (),
) -> Ask:
    """``POST /v1/chat/completions``: cached only when reproducible, unless the operator opts in."""
    settings = services.settings
    requested = body.get("model")
    chat = parse_chat(body, settings=settings, served_model=model, aliases=aliases)
    n = body.get("n", 1)
    return Ask(
        question=chat,
        model=requested if isinstance(requested, str) else None,
        images=tuple(part["image_url"]["url"] for part in chat.image_parts),
        video=chat.video_url,
        sampling=sampling_of(body),
        n=n if isinstance(n, int) else 1,
        stream=bool(body.get("stream", False)),
        **_request_facts(request, raw, principal),
    )
