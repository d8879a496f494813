"""The cached value: one complete upstream answer, replayable by the route as JSON or as SSE."""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.upstream.wire import Usage

CacheStatus = Literal["HIT", "MISS", "COALESCED", "BYPASS"]
"""The ``X-Cache`` header value: served from the cache, computed here, shared with an identical
request in flight, or the cache was not used (policy, client header, store down)."""

STORABLE_FINISH_REASONS = frozenset({"stop", "length", "tool_calls"})
"""Complete answers. ``length`` is complete (the client asked for at most max_tokens); ``abort``,
``error`` or no finish reason at all mean the answer was cut short and must not be replayed."""


class CachedAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A complete answer: full text, why it ended, usage, and optionally the upstream JSON body."""

    text: str
    finish_reason: str | None
    usage: Usage = msgspec.field(default_factory=Usage)
    model: str
    created: float
    raw: bytes | None = None  # the whole upstream body, for routes that replay it verbatim


def is_storable(answer: CachedAnswer) -> bool:
    """True when the answer is complete, so replaying it is indistinguishable from asking again."""
    return answer.finish_reason in STORABLE_FINISH_REASONS


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CachedAnswer)


def encode_answer(answer: CachedAnswer) -> bytes:
    """The stored form of an answer (msgpack)."""
    return _encoder.encode(answer)


def decode_answer(data: bytes) -> CachedAnswer | None:
    """Decode a stored answer; None for anything unreadable (an old format, a corrupt entry)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
