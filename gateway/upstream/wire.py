"""vLLM's wire format: the parts of its answers the gateway reads, and token usage (one type for the
whole gateway: the upstream reports it, the cache stores it, limits settle with it, the routes render it)."""

from __future__ import annotations

from typing import Any

import msgspec


class Usage(msgspec.Struct, frozen=True):
    """Token usage as vLLM reports it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class UpstreamChatMessage(msgspec.Struct):
    role: str = "assistant"
    content: str | None = None


class UpstreamChatChoice(msgspec.Struct):
    index: int = 0
    message: UpstreamChatMessage = msgspec.field(default_factory=UpstreamChatMessage)
    finish_reason: str | None = None


class UpstreamChatCompletion(msgspec.Struct):
    """The fields of vLLM's non-streaming chat answer the app route needs."""

    choices: list[UpstreamChatChoice]
    model: str = ""
    usage: Usage | None = None
    id: str = ""


class UpstreamChunkDelta(msgspec.Struct):
    content: str | None = None


class UpstreamChunkChoice(msgspec.Struct):
    delta: UpstreamChunkDelta = msgspec.field(default_factory=UpstreamChunkDelta)
    finish_reason: str | None = None


class UpstreamChatChunk(msgspec.Struct):
    """One ``chat.completion.chunk`` of a stream, the parts the gateway reads (or an error event)."""

    choices: list[UpstreamChunkChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    model: str | None = None
    error: Any = None


class UpstreamErrorBody(msgspec.Struct):
    """vLLM's error envelope; ``error`` is a string in its 401 answer."""

    error: dict[str, Any] | str


class UpstreamModelCard(msgspec.Struct):
    id: str
    max_model_len: int | None = None


class UpstreamModelList(msgspec.Struct):
    data: list[UpstreamModelCard]
