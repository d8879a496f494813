"""Counters, faults, the running-slot semaphore and the request log of one emulator."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from typing import Any

from gateway.emulator.config import EmulatorConfig, Faults
from gateway.emulator.cost import DecodeCost
from gateway.emulator.engine import Engine, EngineLimits
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
        self.engine = _engine(config) if config.cost_model is not None else None
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
        if self.engine is not None:
            self.engine.scheduler.reset_totals()
            self.engine.scheduler.cache.clear()

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
        """Live values for the metrics collector (from the cost model's engine when it is on)."""
        if self.engine is not None:
            scheduler = self.engine.scheduler
            return Snapshot(
                running=len(scheduler.running),
                waiting=len(scheduler.waiting),
                kv_cache_usage=scheduler.kv_usage,
                mm_cache_queries=self.cache.queries,
                mm_cache_hits=self.cache.hits,
                gpu_seconds=(scheduler.prefill_seconds, scheduler.decode_seconds),
                prefix_cache=(scheduler.cache.queries, scheduler.cache.hits),
            )
        capacity = self.config.max_num_seqs * self.config.max_model_len
        return Snapshot(
            running=self.running,
            waiting=self.waiting,
            kv_cache_usage=min(1.0, self.running_tokens / capacity),
            mm_cache_queries=self.cache.queries,
            mm_cache_hits=self.cache.hits,
        )

    def gpu(self) -> dict[str, Any] | None:
        """The cost model's account of GPU time (None when the model is off)."""
        if self.engine is None:
            return None
        scheduler = self.engine.scheduler
        return {
            "cost_model": self.config.cost_model,
            "gpu_seconds": scheduler.gpu_seconds,
            "prefill_seconds": scheduler.prefill_seconds,
            "decode_seconds": scheduler.decode_seconds,
            "steps": scheduler.steps,
            "prefills": scheduler.prefills,
            "visual_tokens": scheduler.visual_tokens,
            "prefix_cache_queries": scheduler.cache.queries,
            "prefix_cache_hits": scheduler.cache.hits,
            "kv_tokens_used": scheduler.kv_used,
            "kv_tokens": scheduler.limits.kv_tokens,
        }

    def stats(self) -> dict[str, Any]:
        """The ``GET /emulator/stats`` body."""
        snap = self.snapshot()
        return {
            "model": self.config.model,
            "chat_requests": self.chat_requests,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "last_cancelled": self.cancellations[-1] if self.cancellations else None,
            "cancellations": list(self.cancellations),
            "dropped": self.dropped,
            "active": self.active,
            "running": snap.running,
            "waiting": snap.waiting,
            "errors_injected": self.errors_injected,
            "errors_by_status": {str(status): n for status, n in sorted(self.errors_by_status.items())},
            "images": dict(self.image_counts),
            "mm_cache_queries": self.cache.queries,
            "mm_cache_hits": self.cache.hits,
            "faults": self.faults,
            "gpu": self.gpu(),
        }


def _engine(config: EmulatorConfig) -> Engine:
    limits = EngineLimits(
        max_num_seqs=config.max_num_seqs,
        kv_tokens=config.kv_tokens,
        max_num_batched_tokens=config.max_num_batched_tokens,
        decode=DecodeCost(config.decode_ms, config.decode_ms_per_1k_kv),
        prefix_cache=config.enable_prefix_caching,
    )
    return Engine(limits)
