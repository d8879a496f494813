"""What the pipeline returns: an answer or a live stream, with the facts the access log records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from gateway.cache import CachedAnswer, CacheStatus
from gateway.serving.relay import Source, StreamResult
from gateway.upstream.wire import Usage


@dataclass(eq=False)
class LiveStream:
    """A stream for one client: its source of chunks and what runs once the client's relay ends.

    The route picks the relay (app SSE or OpenAI chunks) and passes :meth:`finish` as its
    ``on_done``; ``result`` is what that relay saw, once it ended.
    """

    source: Source
    started: float | None  # the request's arrival, for time to first token (None: a replay)
    on_end: Callable[[StreamResult], Awaitable[None]]
    leads: bool  # this request asked vLLM (its tokens are spent by it)
    result: StreamResult | None = field(default=None)

    async def finish(self, result: StreamResult) -> None:
        self.result = result
        await self.on_end(result)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One served request: a JSON ``answer`` or a live ``stream``, and how it was produced."""

    cache: CacheStatus
    model: str
    replica: str | None
    headers: Mapping[str, str]  # RateLimit-* for the response
    answer: CachedAnswer | None = None
    stream: LiveStream | None = None
    spent: Usage | None = None  # tokens vLLM spent for this request (JSON); streams: see usage
    logged_prompt: str | None = None  # the client's prompt, only when GATEWAY_LOG_PROMPTS is on

    @property
    def usage(self) -> Usage | None:
        """Tokens spent upstream for this request: none for a hit or a coalesced answer."""
        if self.stream is None:
            return self.spent
        result = self.stream.result
        return result.usage if self.stream.leads and result is not None else None

    @property
    def cached(self) -> bool:
        return self.cache in ("HIT", "COALESCED")
