"""Counters, faults, the running-slot semaphore and the request log of one emulator."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from typing import Any

from gateway.emulator.config import EmulatorConfig, Faults
from gateway.emulator.images import MMCache
from gateway.emulator.metrics import EmulatorMetrics, Snapshot

REDACTED = "<redacted>"


class EmulatorState:
    """Everything tests may inspect; reachable as ``app.state``."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.slots = asyncio.Semaphore(config.max_num_seqs)  # binds to the serving loop on first use
        self.cache = MMCache(config.mm_cache_items)
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        # Live values: they describe requests in flight, so reset() leaves them alone.
        self.active = 0
        self.running = 0
        self.waiting = 0
        self.running_tokens = 0
        self._reset_totals()

    def _reset_totals(self) -> None:
        self.faults: Faults = self.config.faults()
        self.rng = random.Random(self.config.seed)
        self.chat_requests = 0
        self.completed = 0
        self.cancelled = 0
        self.dropped = 0
        self.errors_injected = 0
        self.errors_by_status: Counter[int] = Counter()
        self.image_counts: Counter[str] = Counter()
        self.cancellations: deque[dict[str, Any]] = deque(maxlen=100)
        self.metrics = EmulatorMetrics(self.config.model, self.snapshot)

    def reset(self) -> None:
        """Zero the totals, restore the configured faults, empty the cache and the request log."""
        self._reset_totals()
        self.cache.clear()
        self.requests.clear()

    def inject_error(self) -> bool:
        """Whether this chat request gets an injected error (every Nth, or by the seeded RNG)."""
        faults = self.faults
        every = faults.error_every > 0 and self.chat_requests % faults.error_every == 0
        drawn = faults.error_rate > 0 and self.rng.random() < faults.error_rate
        if every or drawn:
            self.errors_injected += 1
            return True
        return False

    def record(self, headers: dict[str, str]) -> dict[str, Any]:
        """Start a request-log entry; the caller fills in ``body`` and ``status``."""
        shown = dict(headers)
        auth = shown.get("authorization")
        if auth is not None:
            scheme = auth.split(" ", 1)[0] if " " in auth else ""
            shown["authorization"] = f"{scheme} {REDACTED}".strip()
        entry: dict[str, Any] = {
            "received_at": time.time(),
            "request_id": headers.get("x-request-id"),
            "traceparent": headers.get("traceparent"),
            "headers": shown,
            "body": None,
            "image_sha256": [],
            "status": None,
        }
        self.requests.append(entry)
        return entry

    def cancel(self, request_id: str, arrival: float, phase: str) -> None:
        """Count a request whose client went away before its end."""
        self.cancelled += 1
        self.cancellations.append(
            {
                "request_id": request_id,
                "at": time.time(),
                "after_seconds": time.monotonic() - arrival,
                "phase": phase,
            }
        )

    def snapshot(self) -> Snapshot:
        """Live values for the metrics collector."""
        capacity = self.config.max_num_seqs * self.config.max_model_len
        return Snapshot(
            running=self.running,
            waiting=self.waiting,
            kv_cache_usage=min(1.0, self.running_tokens / capacity),
            mm_cache_queries=self.cache.queries,
            mm_cache_hits=self.cache.hits,
        )

    def stats(self) -> dict[str, Any]:
        """The ``GET /emulator/stats`` body."""
        return {
            "model": self.config.model,
            "chat_requests": self.chat_requests,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "last_cancelled": self.cancellations[-1] if self.cancellations else None,
            "cancellations": list(self.cancellations),
            "dropped": self.dropped,
            "active": self.active,
            "running": self.running,
            "waiting": self.waiting,
            "errors_injected": self.errors_injected,
            "errors_by_status": {str(status): n for status, n in sorted(self.errors_by_status.items())},
            "images": dict(self.image_counts),
            "mm_cache_queries": self.cache.queries,
            "mm_cache_hits": self.cache.hits,
            "faults": self.faults,
        }
