"""Answers as the cache keeps them: built from vLLM's JSON or from a finished stream, replayed as
chunks or as a chat.completion body, and the cache policy that decides whether one is kept."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import msgspec

from gateway.cache import CachedAnswer, CacheMode, decide_mode, is_reproducible, is_storable
from gateway.serving.ask import Ask
from gateway.serving.relay import StreamResult
from gateway.settings import Settings
from gateway.upstream.client import UpstreamAnswer
from gateway.upstream.wire import Usage

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class CachePlan:
    """Whether and how the cache takes part in one request (the key comes once images are hashed)."""

    mode: CacheMode

    @property
    def active(self) -> bool:
        return self.mode is not CacheMode.BYPASS


def plan_cache(settings: Settings, ask: Ask) -> CachePlan:
    """The operator switch, the route's policy (any temperature, or reproducible requests only) and
    the client's Cache-Control, combined into one mode."""
    reproducible = is_reproducible(
        temperature=ask.sampling.temperature,
        n=ask.n,
        any_temperature=ask.any_temperature or settings.cache_any_temperature,
    )
    mode = decide_mode(
        enabled=settings.cache_enabled, reproducible=reproducible, cache_control=ask.cache_control
    )
    return CachePlan(mode)


def cached_from_upstream(answer: UpstreamAnswer, *, keep_raw: bool) -> CachedAnswer:
    """vLLM's JSON answer as a cache entry (with its bytes when the route replays them verbatim)."""
    choice = answer.completion.choices[0]
    return CachedAnswer(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=answer.completion.usage or Usage(),
        model=answer.completion.model,
        created=time.time(),
        raw=answer.raw if keep_raw else None,
    )


def cached_from_stream(result: StreamResult, model: str) -> CachedAnswer | None:
    """A complete streamed answer as a cache entry; None for a truncated or failed stream."""
    if not result.completed or result.failed:
        return None
    answer = CachedAnswer(
        text=result.text,
        finish_reason=result.finish_reason,
        usage=result.usage or Usage(),
        model=result.model or model,
        created=time.time(),
    )
    return answer if is_storable(answer) else None


def replay_items(answer: CachedAnswer) -> list[bytes | None]:
    """A stored answer as the upstream chunks that would have produced it (role, text, finish,
    usage), so a replay goes through the same relay as a live stream."""
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
    items: list[bytes | None] = [_encode({**base, "choices": [choice]}) for choice in deltas]
    items.append(_encode({**base, "choices": [], "usage": answer.usage}))
    return items


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
            "usage": answer.usage,
        }
    )
