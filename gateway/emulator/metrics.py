"""vLLM-named Prometheus metrics, in a registry per emulator (several run in one test process).

Only what the emulator can honestly compute. ``vllm:kv_cache_usage_perc`` is *emulated*: the
tokens held by running requests (prompt + generated so far) over ``max_num_seqs * max_model_len``.
Prefix-cache metrics are emitted only with the cost model on (docs/emulator-cost-model.md),
which also adds ``emulator_gpu_seconds_total{phase}``, the modelled GPU busy time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# vLLM's own bucket edges, so dashboards built on vLLM read the emulator the same way.
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
LABELS = ("model_name", "engine")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live values read at scrape time."""

    running: int
    waiting: int
    kv_cache_usage: float
    mm_cache_queries: int
    mm_cache_hits: int
    gpu_seconds: tuple[float, float] | None = None  # cost model: (prefill, decode) busy seconds
    prefix_cache: tuple[int, int] | None = None  # cost model: (queries, hits), in images


class _LiveCollector(Collector):
    def __init__(self, labels: list[str], read: Callable[[], Snapshot]) -> None:
        self._labels = labels
        self._read = read

    def collect(self) -> Iterator[Metric]:
        snap = self._read()
        gauges = (
            ("vllm:num_requests_running", "Requests in the running batch", snap.running),
            ("vllm:num_requests_waiting", "Requests waiting for a running slot", snap.waiting),
            ("vllm:kv_cache_usage_perc", "Emulated KV-cache usage (1 = full)", snap.kv_cache_usage),
        )
        for name, doc, value in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=LABELS)
            gauge.add_metric(self._labels, value)
            yield gauge
        counters: tuple[tuple[str, str, float], ...] = (
            ("vllm:mm_cache_queries", "Multi-modal cache lookups (items)", snap.mm_cache_queries),
            ("vllm:mm_cache_hits", "Multi-modal cache hits (items)", snap.mm_cache_hits),
        )
        if snap.prefix_cache is not None:
            counters += (
                ("vllm:prefix_cache_queries", "Emulated prefix-cache lookups (images)", snap.prefix_cache[0]),
                ("vllm:prefix_cache_hits", "Emulated prefix-cache hits (images)", snap.prefix_cache[1]),
            )
        for name, doc, value in counters:
            counter = CounterMetricFamily(name, doc, labels=LABELS)
            counter.add_metric(self._labels, value)
            yield counter
        if snap.gpu_seconds is not None:
            gpu = CounterMetricFamily(
                "emulator_gpu_seconds",
                "Modelled GPU busy time by phase (cost model; emulator only, not a vLLM metric)",
                labels=[*LABELS, "phase"],
            )
            for phase, seconds in zip(("prefill", "decode"), snap.gpu_seconds, strict=True):
                gpu.add_metric([*self._labels, phase], seconds)
            yield gpu


class EmulatorMetrics:
    """The emulator's metrics; ``render()`` gives the ``/metrics`` body."""

    def __init__(self, model: str, read: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"model_name": model, "engine": "0"}
        self.registry.register(_LiveCollector(list(labels.values()), read))
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Prefill tokens processed", LABELS, registry=self.registry
        ).labels(**labels)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Generation tokens produced", LABELS, registry=self.registry
        ).labels(**labels)
        self._success = Counter(
            "vllm:request_success",
            "Finished requests by finish reason",
            [*LABELS, "finished_reason"],
            registry=self.registry,
        )
        self._labels = labels
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Time to first token",
            LABELS,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "End-to-end request latency",
            LABELS,
            buckets=E2E_BUCKETS,
            registry=self.registry,
        ).labels(**labels)

    def finished(self, reason: str) -> None:
        """Count one finished request by its finish reason."""
        self._success.labels(**self._labels, finished_reason=reason).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
