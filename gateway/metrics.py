"""The metrics catalogue: every Prometheus metric the gateway exports, in one place.

Documented in docs/metrics.md. No label ever holds an API key, a URL or a prompt: replicas are
named ``r0``, ``r1`` ... (their addresses are on ``/readyz``), keys by their *name* and only
when ``GATEWAY_METRICS_KEY_LABELS`` is on.

With several worker processes, prometheus-client's multiprocess mode is used: ``vlgw serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is imported, and every gauge says how
its per-process values combine.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BYTES_BUCKETS = (1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7)
PIXEL_BUCKETS = (1e4, 6.5e4, 2.6e5, 5.2e5, 1e6, 1.31e6, 2.1e6, 4e6, 8.3e6, 1.2e7, 2.5e7, 5e7)
TOKEN_BUCKETS = (16, 64, 128, 256, 512, 768, 1024, 1280, 2048, 4096, 8192, 16384)

# --- requests --------------------------------------------------------------------------------
REQUESTS = Counter("gateway_requests", "Requests answered, by route and contract code", ["route", "code"])
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Whole request latency as seen by the gateway",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
INFLIGHT = Gauge("gateway_inflight_requests", "Requests being served", ["route"], multiprocess_mode="livesum")

# --- upstream ----------------------------------------------------------------------------------
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time waiting on the upstream (non-streaming answer)",
    ["replica"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gateway_time_to_first_token_seconds",
    "From request start to the first streamed token",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
STREAM_CHUNK_GAP = Histogram(
    "gateway_stream_chunk_gap_seconds",
    "Gap between consecutive upstream stream chunks",
    buckets=(*FAST_BUCKETS, 5, 10, 30),
)
STREAMS = Counter(
    "gateway_streams", "Streams by outcome: started, completed, client_aborted, upstream_aborted", ["outcome"]
)
TOKENS = Counter("gateway_tokens", "Tokens accounted by the upstream's usage", ["direction"])
UPSTREAM_HEALTHY = Gauge(
    "gateway_upstream_healthy", "1 when the replica is in rotation", ["replica"], multiprocess_mode="max"
)
UPSTREAM_INFLIGHT = Gauge(
    "gateway_upstream_inflight", "Requests in flight to the replica", ["replica"], multiprocess_mode="livesum"
)
UPSTREAM_EJECTIONS = Counter(
    "gateway_upstream_ejections", "Replica ejections by outlier detection", ["replica"]
)
UPSTREAM_RETRIES = Counter("gateway_upstream_retries", "Retries on another replica, by reason", ["reason"])
ROUTING_DECISIONS = Counter(
    "gateway_routing_decisions",
    "Replica choices: affinity_hit, affinity_overflow, least_outstanding",
    ["decision"],
)
ADMISSION_REJECTIONS = Counter(
    "gateway_admission_rejections", "Requests shed because every replica was at its cap and the queue full"
)
QUEUE_WAIT = Histogram(
    "gateway_queue_wait_seconds", "Time spent waiting for an upstream slot", buckets=(*FAST_BUCKETS, 5)
)

# --- image intake ------------------------------------------------------------------------------
INTAKE_DURATION = Histogram(
    "gateway_intake_duration_seconds",
    "Image intake (fetch, decode, normalise) per request",
    buckets=(*FAST_BUCKETS, 5, 10),
)
IMAGE_FETCH_DURATION = Histogram(
    "gateway_image_fetch_duration_seconds", "Fetching one image URL", buckets=LATENCY_BUCKETS
)
IMAGE_BYTES = Histogram(
    "gateway_image_bytes", "Encoded image size, in and out of intake", ["stage"], buckets=BYTES_BUCKETS
)
IMAGE_PIXELS = Histogram(
    "gateway_image_pixels", "Image pixels, in and out of intake", ["stage"], buckets=PIXEL_BUCKETS
)
VISUAL_TOKENS = Histogram("gateway_visual_tokens", "Estimated visual tokens per image", buckets=TOKEN_BUCKETS)
IMAGE_REFUSALS = Counter("gateway_image_refusals", "Images refused, by reason", ["reason"])

# --- video intake ------------------------------------------------------------------------------
VIDEO_INTAKE_DURATION = Histogram(
    "gateway_video_intake_duration_seconds",
    "Video intake (fetch, probe, decode, sample, encode) per clip",
    buckets=LATENCY_BUCKETS,
)
VIDEO_TOKENS = Histogram(
    "gateway_video_tokens", "Estimated prompt tokens per accepted clip", buckets=TOKEN_BUCKETS
)
VIDEO_REFUSALS = Counter("gateway_video_refusals", "Clips refused, by reason", ["reason"])

# --- cache -------------------------------------------------------------------------------------
CACHE_REQUESTS = Counter("gateway_cache_requests", "Cache lookups: hit, miss, coalesced, bypass", ["result"])
CACHE_STORES = Counter("gateway_cache_stores", "Answers stored in the cache")
CACHE_EVICTIONS = Counter("gateway_cache_evictions", "Entries evicted from the embedded cache (LRU)")
CACHE_BYTES = Gauge("gateway_cache_bytes", "Bytes held by the embedded cache", multiprocess_mode="livesum")
CACHE_SAVED_TOKENS = Counter("gateway_cache_saved_tokens", "Upstream tokens not spent thanks to the cache")

# --- limits and keys ---------------------------------------------------------------------------
LIMIT_DECISIONS = Counter(
    "gateway_limit_decisions",
    "Limit checks by kind (rpm, tpm, concurrency) and decision",
    ["kind", "decision", "key"],
)
LIMITER_DURATION = Histogram(
    "gateway_limiter_duration_seconds", "Time spent in limit checks", ["backend"], buckets=FAST_BUCKETS
)
AUTH_FAILURES = Counter("gateway_auth_failures", "Refused credentials, by reason", ["reason"])

# --- store (Redis) -------------------------------------------------------------------------------
REDIS_ERRORS = Counter("gateway_redis_errors", "Redis calls that failed or timed out", ["op"])
REDIS_DEGRADED = Gauge(
    "gateway_redis_degraded",
    "1 while Redis is unreachable and local fallbacks are used",
    multiprocess_mode="max",
)

# --- app-developer features --------------------------------------------------------------------
PRECHECK_REFUSALS = Counter(
    "gateway_precheck_refusals", "Images refused by the quality pre-check", ["reason"]
)
FEEDBACK = Counter("gateway_feedback", "Feedback received, by verdict", ["verdict"])
DEVEX_STORE_ERRORS = Counter(
    "gateway_devex_store_errors",
    "Request-log, usage or feedback store calls that failed (never fails the request they describe)",
    ["op"],
)
DEVEX_DROPPED = Counter(
    "gateway_devex_dropped",
    "Request records or usage rows dropped because the write backlog was full",
    ["kind"],
)
