"""Who gets in and how much: the key, its rate and token limits, its concurrency slot.

Checked before any image work or upstream call. The token estimate is an upper bound known
before intake (text + every image at the pixel budget + ``max_tokens``); once the answer's real
usage is known, :meth:`Slot.settle` reconciles the difference and frees the concurrency slot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType

import structlog

from gateway import errors
from gateway.auth import KeyManager, Principal, extract_key
from gateway.constants import QWEN_IMAGE_FRAME_TOKENS, QWEN_PATCH_FACTOR
from gateway.limits import Lease, LimitDecision, Limiter
from gateway.upstream.wire import Usage

log = structlog.get_logger("gateway.serving.gate")

MESSAGE_OVERHEAD_TOKENS = 16  # the chat template's role markers around each message


def text_tokens_upper(text_bytes: int, messages: int = 1) -> int:
    """An upper bound of the text's tokens: Qwen's tokenizer averages well over 3 bytes a token."""
    return math.ceil(text_bytes / 3) + MESSAGE_OVERHEAD_TOKENS * messages


def text_tokens_lower(text_bytes: int) -> int:
    """A lower bound (for refusing with 40006 only what surely cannot fit)."""
    return text_bytes // 8


def estimate_tokens(
    *, text_bytes: int, messages: int, images: int, pixel_budget: int, max_tokens: int
) -> int:
    """Upper-bound token cost of a request, for the tpm check before intake."""
    per_image = pixel_budget // (QWEN_PATCH_FACTOR * QWEN_PATCH_FACTOR) + QWEN_IMAGE_FRAME_TOKENS
    return text_tokens_upper(text_bytes, messages) + images * per_image + max_tokens


class Slot:
    """An admitted request's hold on its limits, settled exactly once: tokens reconciled with the
    real usage and the concurrency slot freed.

    Used as ``async with``: leaving the block settles with no tokens spent, unless the block
    settled already or handed the slot to a stream (:meth:`hand_over`), whose end settles it.
    """

    __slots__ = ("decision", "estimated_tokens", "handed_over", "lease", "limiter", "principal", "settled")

    def __init__(
        self,
        principal: Principal,
        decision: LimitDecision,
        estimated_tokens: int,
        lease: Lease | None,
        limiter: Limiter,
    ) -> None:
        self.principal = principal
        self.decision = decision
        self.estimated_tokens = estimated_tokens
        self.lease = lease
        self.limiter = limiter
        self.settled = False
        self.handed_over = False

    def headers(self) -> dict[str, str]:
        return self.decision.headers()

    def hand_over(self) -> Slot:
        """The response (a stream) settles the slot when it ends; leaving the block does not."""
        self.handed_over = True
        return self

    async def settle(self, usage: Usage | None) -> None:
        """Reconcile tokens with the real usage (none spent when ``usage`` is None); free the slot."""
        if self.settled:
            return
        self.settled = True
        try:
            actual = usage.total_tokens if usage is not None else 0
            await self.limiter.reconcile(self.principal, self.estimated_tokens, actual)
        finally:
            if self.lease is not None:
                await self.lease.release()

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.handed_over or exc is not None:
            await self.settle(None)


class Gate:
    """Authentication and per-key limits, shared by every route."""

    def __init__(self, keys: KeyManager, limiter: Limiter) -> None:
        self.keys = keys
        self.limiter = limiter

    async def authenticate(
        self, headers: Mapping[str, str], route: str, *, client: str | None = None
    ) -> Principal:
        """The caller's principal (40101 without a valid key, 40301 when the route is not theirs).

        ``client`` is the caller's address: unknown keys are budgeted per address (42904)."""
        principal = await self.keys.authenticate(extract_key(headers), client=client)
        principal.check_route(route)
        return principal

    async def admit(self, principal: Principal, *, estimated_tokens: int) -> Slot:
        """Charge the rates and take a concurrency slot (42901/42902/42903, RateLimit-* headers)."""
        decision = await self.limiter.evaluate(principal, estimated_tokens)
        refusal = decision.error()
        if refusal is not None:
            refusal.headers.update(decision.headers())
            raise refusal
        try:
            lease = await self.limiter.acquire(principal)
        except errors.TooManyRequests as exc:
            await self.limiter.reconcile(principal, estimated_tokens, 0)  # nothing will be spent
            exc.headers.update(decision.headers())
            raise
        return Slot(principal, decision, estimated_tokens, lease, self.limiter)
