"""One vLLM replica and its state machine: in rotation, ejected, half-open, overloaded.

    in rotation ──(upstream_eject_failures consecutive failures)──▶ ejected
        ▲                                                         │ ejected_until passes
        │ probe request ok, or active health check ok             ▼
        └─────────────────────────────────────────────────── half-open ──(probe fails)──▶ ejected (longer)

Half-open lets exactly one request through at a time (``probing``). "Overloaded" (vLLM's
503/429 with ``Retry-After``) is separate: the replica is skipped until ``overloaded_until``,
without counting a failure. ``healthy`` is the active health check's verdict and gates all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "connect_error", "timeout", "server_error", "overloaded"]
FAILURES: frozenset[str] = frozenset({"connect_error", "timeout", "server_error"})

# A queue-depth signal from vLLM counts like this many of our own in-flight requests per unit of
# KV-cache usage: a replica near a full KV cache is about to preempt, which hurts every request on it.
KV_USAGE_WEIGHT = 4.0
MAX_OVERLOAD_SECONDS = 60.0
LATENCY_ALPHA = 0.2  # weight of the newest lease duration in the moving average
LATENCY_DECAY_SECONDS = 10.0  # an unrefreshed average fades (e^-t/τ), so an avoided replica is tried again


@dataclass(slots=True, eq=False)
class Replica:
    """One vLLM server; ``name`` (r0, r1 ...) is what metrics and logs show, never the URL."""

    name: str
    url: str
    inflight: int = 0
    healthy: bool = True
    models: list[str] = field(default_factory=list)
    max_model_len: int | None = None
    # passive outlier detection
    consecutive_failures: int = 0
    ejections: int = 0  # ejections in a row; sets the length of the next one
    ejected_until: float | None = None  # None: not ejected
    probing: bool = False  # the half-open probe request is in flight
    readmitted_at: float = 0.0
    overloaded_until: float = 0.0
    last_error: str | None = None
    last_check: float | None = None
    # moving average of lease durations (request latency as this gateway saw it)
    latency: float | None = None
    latency_at: float = 0.0
    timed: int = 0  # leases in flight with their start times summed in started_sum
    started_sum: float = 0.0
    # load scraped from vLLM's /metrics (upstream_scrape_metrics)
    waiting: float = 0.0
    kv_usage: float = 0.0
    scraped_at: float | None = None

    # --- state -------------------------------------------------------------------------------

    def in_rotation(self) -> bool:
        """Healthy and not ejected (half-open counts as out): what the healthy gauge shows."""
        return self.healthy and self.ejected_until is None

    def half_open(self, now: float) -> bool:
        return self.ejected_until is not None and now >= self.ejected_until

    def eligible(self, now: float) -> bool:
        """May receive a new request now (capacity aside)."""
        if not self.healthy or now < self.overloaded_until:
            return False
        if self.ejected_until is None:
            return True
        return now >= self.ejected_until and not self.probing

    def has_room(self, now: float, cap: int) -> bool:
        """Under the in-flight cap; a half-open replica takes one probe request at a time."""
        if self.half_open(now):
            return not self.probing and self.inflight == 0
        return self.inflight < cap

    def load(self, now: float, fresh_for: float) -> float:
        """Outstanding requests, plus vLLM's own queue and KV pressure when a recent scrape has them."""
        score = float(self.inflight)
        if self.scraped_at is not None and now - self.scraped_at <= fresh_for:
            score += self.waiting + KV_USAGE_WEIGHT * self.kv_usage
        return score

    def observed(self, now: float, seconds: float) -> None:
        """Fold one finished lease's duration into the latency average."""
        previous = self._decayed(now)
        self.latency = seconds if previous is None else previous + LATENCY_ALPHA * (seconds - previous)
        self.latency_at = now

    def _decayed(self, now: float) -> float | None:
        if self.latency is None:
            return None
        return self.latency * math.exp(-max(0.0, now - self.latency_at) / LATENCY_DECAY_SECONDS)

    def recent_latency(self, now: float) -> float | None:
        """The latency average, raised to the mean age of requests still in flight.

        The age term notices a replica turning slow (or stalling) before its slow answers
        arrive to be averaged: otherwise it keeps getting its full share for a whole latency.
        """
        age = now - self.started_sum / self.timed if self.timed else None
        average = self._decayed(now)
        if average is None or age is None:
            return age if average is None else average
        return max(average, age)

    def lease_started(self, now: float) -> None:
        self.timed += 1
        self.started_sum += now

    def lease_ended(self, started: float) -> None:
        self.timed -= 1
        self.started_sum = self.started_sum - started if self.timed else 0.0

    def describe(self, now: float, model: str | None) -> dict[str, Any]:
        """Its state for /readyz and operators (the URL is fine there; never in metrics)."""
        scraped = self.scraped_at is not None
        return {
            "url": self.url,
            "healthy": self.healthy,
            "in_rotation": self.in_rotation(),
            "ejected": self.ejected_until is not None,
            "ejected_for": round(max(0.0, self.ejected_until - now), 3) if self.ejected_until else 0.0,
            "overloaded_for": round(max(0.0, self.overloaded_until - now), 3),
            "inflight": self.inflight,
            "model_listed": model is not None and model in self.models,
            "last_error": self.last_error,
            "latency_ms": None if self.latency is None else round(self.latency * 1000, 1),
            "waiting": self.waiting if scraped else None,
            "kv_cache_usage": self.kv_usage if scraped else None,
        }

    # --- transitions (the pool calls these and publishes metrics) -------------------------------

    def eject(self, now: float, base: float, cap: float) -> float:
        """Take it out of rotation for ``base`` doubled per ejection in a row, capped; returns seconds."""
        self.ejections += 1
        seconds = min(base * 2.0 ** (self.ejections - 1), max(cap, base))
        self.ejected_until = now + seconds
        self.probing = False
        return seconds

    def readmit(self, now: float) -> None:
        self.ejected_until = None
        self.probing = False
        self.consecutive_failures = 0
        self.readmitted_at = now

    def succeeded(self, now: float, base: float) -> bool:
        """A request went fine; returns True when this re-admits a half-open replica."""
        self.consecutive_failures = 0
        if self.ejected_until is None:
            # Forgive the ejection streak once it has served well for as long as its last ejection.
            if self.ejections and now - self.readmitted_at > base * 2 ** (self.ejections - 1):
                self.ejections = 0
            return False
        if self.half_open(now):
            self.readmit(now)
            return True
        return False

    def overloaded(self, now: float, retry_after: float | None) -> None:
        seconds = 1.0 if retry_after is None else retry_after
        self.overloaded_until = max(self.overloaded_until, now + min(max(seconds, 0.0), MAX_OVERLOAD_SECONDS))
