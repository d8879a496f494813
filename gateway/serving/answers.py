"""Getting an answer once: the response cache, coalescing and Idempotency-Key around upstream calls.

Routes describe the request (its cache key material and sampling); this module decides whether
the cache may answer, runs the upstream call at most once for identical concurrent requests, and
replays stored answers — as JSON, or as SSE for streaming requests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from gateway.api.context import RequestContext
from gateway.cache import (
    CachedAnswer,
    CacheMode,
    CacheStatus,
    KeyMaterial,
    decide_mode,
    fingerprint,
    is_reproducible,
    is_storable,
    parse_cache_control,
    validate_idempotency_key,
)
from gateway.cache import Usage as CacheUsage
from gateway.constants import IDEMPOTENCY_KEY_HEADER
from gateway.devex import RequestRecord
from gateway.images import PreparedImage
from gateway.schemas import Usage
from gateway.serving.gate import Pass
from gateway.serving.relay import StreamResult
from gateway.serving.services import Services
from gateway.serving.task import Task
from gateway.upstream.client import UpstreamAnswer
from gateway.upstream.sse import SSE_DONE, sse_event

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class CachePlan:
    """Whether and under which key the cache takes part in one request."""

    mode: CacheMode
    key: str | None

    @property
    def active(self) -> bool:
        return self.key is not None and self.mode is not CacheMode.BYPASS


def plan_cache(
    services: Services,
    headers: Mapping[str, str],
    *,
    owner: str,
    material: KeyMaterial,
    temperature: float | None,
    n: int = 1,
    opt_in: bool = False,
) -> CachePlan:
    """The cache mode for this request: policy (reproducible answers only) and Cache-Control."""
    settings = services.settings
    reproducible = is_reproducible(
        temperature=temperature, n=n, any_temperature=settings.cache_any_temperature or opt_in
    )
    mode = decide_mode(
        enabled=settings.cache_enabled,
        reproducible=reproducible,
        cache_control=parse_cache_control(headers.get("cache-control")),
    )
    if mode is CacheMode.BYPASS:
        return CachePlan(mode, None)
    return CachePlan(mode, services.cache.key(material, owner=owner))


def cached_from_upstream(answer: UpstreamAnswer, *, keep_raw: bool) -> CachedAnswer:
    choice = answer.completion.choices[0]
    usage = answer.completion.usage or Usage()
    return CachedAnswer(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=CacheUsage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        model=answer.completion.model,
        created=time.time(),
        raw=answer.raw if keep_raw else None,
    )


def cached_from_stream(result: StreamResult, model: str) -> CachedAnswer | None:
    """A complete streamed answer as a cache entry; None for a truncated or failed stream."""
    if not result.completed or result.failed:
        return None
    usage = result.usage or Usage()
    answer = CachedAnswer(
        text=result.text,
        finish_reason=result.finish_reason,
        usage=CacheUsage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        model=result.model or model,
        created=time.time(),
    )
    return answer if is_storable(answer) else None


def usage_of(answer: CachedAnswer) -> Usage:
    return Usage(answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens)


async def answer_once(
    services: Services,
    plan: CachePlan,
    compute: Callable[[], Awaitable[CachedAnswer]],
    *,
    headers: Mapping[str, str],
    owner: str,
    body: bytes,
) -> tuple[CachedAnswer, CacheStatus]:
    """The answer, from the cache, a coalesced leader, an idempotent replay or the upstream."""

    async def cached_or_computed() -> tuple[CachedAnswer, CacheStatus]:
        if plan.key is None:
            return await compute(), "BYPASS"
        return await services.cache.get_or_compute(plan.key, compute, mode=plan.mode)

    idempotency_key = headers.get(IDEMPOTENCY_KEY_HEADER)
    if idempotency_key is None:
        return await cached_or_computed()
    statuses: list[CacheStatus] = []

    async def first_attempt() -> CachedAnswer:
        answer, status = await cached_or_computed()
        statuses.append(status)
        return answer

    answer, replayed = await services.idempotency.run(
        owner=owner,
        idempotency_key=validate_idempotency_key(idempotency_key),
        body_hash=fingerprint(body),
        compute=first_attempt,
    )
    return answer, "HIT" if replayed else (statuses[0] if statuses else "MISS")


async def replay_app_stream(answer: CachedAnswer, request_id: str) -> AsyncIterator[bytes]:
    """A stored answer as the app route's SSE (one text event, the final event, ``[DONE]``)."""
    if answer.text:
        yield b'data: {"text":' + _encode(answer.text) + b"}\n\n"
    final = {
        "code": 0,
        "usage": usage_of(answer),
        "finish_reason": answer.finish_reason,
        "request_id": request_id,
    }
    yield sse_event(_encode(final))
    yield SSE_DONE


async def replay_openai_stream(answer: CachedAnswer, *, include_usage: bool) -> AsyncIterator[bytes]:
    """A stored answer as OpenAI chat.completion.chunk events."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": answer.model,
    }
    deltas = [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"content": answer.text}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": answer.finish_reason},
    ]
    for choice in deltas:
        yield sse_event(_encode({**base, "choices": [choice]}))
    if include_usage:
        yield sse_event(_encode({**base, "choices": [], "usage": usage_of(answer)}))
    yield SSE_DONE


def completion_json(answer: CachedAnswer) -> bytes:
    """The OpenAI chat.completion body of an answer: vLLM's own bytes when kept, else rebuilt."""
    if answer.raw is not None:
        return answer.raw
    message = {"role": "assistant", "content": answer.text}
    return _encode(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(answer.created),
            "model": answer.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
            ],
            "usage": usage_of(answer),
        }
    )


def remember(
    services: Services,
    ctx: RequestContext,
    *,
    task: Task | None,
    client_prompt: str | None,
    answer: str,
    model: str,
    images: Sequence[PreparedImage],
) -> None:
    """Keep an answered request for a week, so the app's feedback button can refer to it."""
    preset = task.preset if task else None
    if services.settings.log_prompts:  # user data: only when the operator asks for it
        ctx.fields["prompt"] = client_prompt
    record = RequestRecord(
        request_id=ctx.request_id,
        key_name=ctx.key_name or "-",
        route=ctx.route,
        prompt=client_prompt,
        answer=answer,
        model=model,
        image_sha256=[image.sha256 for image in images],
        preset=preset.name if preset else None,
        preset_version=preset.version if preset else None,
    )
    services.devex.record_request(record, images=[image.data for image in images])


Remember = Callable[[str, str], None]
"""Keep an answered request for feedback, given the answer's text and model."""


def stream_finisher(
    services: Services, ctx: RequestContext, admitted: Pass, plan: CachePlan, model: str, keep: Remember
) -> Callable[[StreamResult], Awaitable[None]]:
    """What runs once a relayed stream ends, however it ends: settle the limits, store a complete
    answer in the cache, keep it for feedback."""

    async def done(result: StreamResult) -> None:
        await admitted.settle(result.usage)
        if result.usage is not None:
            ctx.usage = result.usage
        stored = cached_from_stream(result, model) if plan.active else None
        if stored is not None and plan.key is not None:
            await services.cache.store(plan.key, stored)
        if result.completed and not result.failed:
            keep(result.text, result.model or model)

    return done
