"""What a limit check answers: quotas for the ``RateLimit-*`` headers and, on refusal, the error.

Headers follow the IETF draft "RateLimit header fields for HTTP" in its widely implemented
three-field form, describing the quota closest to exhaustion:

    RateLimit-Limit: 60          requests (or tokens) per window
    RateLimit-Remaining: 12      left in the current window
    RateLimit-Reset: 48          seconds until the quota is whole again
    RateLimit-Policy: 60;w=60, 40000;w=60   every quota that applies to the key
    Retry-After: 3               on a refusal: seconds until this request would pass
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from gateway.errors import RequestRateLimited, TokenRateLimited, TooManyRequests

Kind = Literal["rpm", "tpm"]


@dataclass(frozen=True, slots=True)
class Quota:
    """One rate quota after a check."""

    kind: Kind
    limit: int
    remaining: int
    reset: float  # seconds until the quota is whole again
    window: float  # seconds

    @property
    def used_fraction(self) -> float:
        return 1.0 - self.remaining / self.limit if self.limit else 0.0


def per_window(window: float) -> str:
    return "per minute" if window == 60 else f"per {window:g} seconds"


def _ceil(seconds: float) -> int:
    return max(0, math.ceil(seconds - 1e-6))


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The answer of :meth:`Limiter.evaluate`; ``allowed`` False carries the refused kind."""

    allowed: bool
    quotas: tuple[Quota, ...] = ()
    refused: Kind | None = None
    retry_after: float | None = None  # seconds, on refusal
    backend: str = "none"  # "redis", "local", "fallback", "open", "none" (no limits)

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` headers (and ``Retry-After`` on refusal); empty when no rate limit applies."""
        headers: dict[str, str] = {}
        if self.quotas:
            tightest = max(self.quotas, key=lambda q: q.used_fraction)
            headers["RateLimit-Limit"] = str(tightest.limit)
            headers["RateLimit-Remaining"] = str(tightest.remaining)
            headers["RateLimit-Reset"] = str(_ceil(tightest.reset))
            headers["RateLimit-Policy"] = ", ".join(f"{q.limit};w={q.window:g}" for q in self.quotas)
        if not self.allowed and self.retry_after is not None:
            headers["Retry-After"] = str(max(1, _ceil(self.retry_after)))
        return headers

    def error(self) -> TooManyRequests | None:
        """The 429 error for a refusal (42901 or 42902, with ``retry_after``), None when allowed."""
        if self.allowed:
            return None
        quota = next((q for q in self.quotas if q.kind == self.refused), None)
        limit = f": {quota.limit} {{}} {per_window(quota.window)}" if quota else ""
        if self.refused == "tpm":
            return TokenRateLimited(
                "token rate limit exceeded" + limit.format("tokens"), retry_after=self.retry_after
            )
        return RequestRateLimited(
            "rate limit exceeded" + limit.format("requests"), retry_after=self.retry_after
        )


ALLOWED_UNLIMITED = LimitDecision(allowed=True)
