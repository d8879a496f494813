"""Names and numbers shared across packages: headers, routes, retryable statuses."""

from __future__ import annotations

REQUEST_ID_HEADER = "x-request-id"
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
CACHE_STATUS_HEADER = "x-cache"
TRACEPARENT_HEADER = "traceparent"
API_KEY_HEADER = "x-api-key"

# A client-sent X-Request-Id is kept when it is this long at most and only uses these characters.
REQUEST_ID_MAX_LENGTH = 128
REQUEST_ID_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

ROUTE_APP = "/v1/qwen-vl"
ROUTE_CHAT = "/v1/chat/completions"
ROUTE_MODELS = "/v1/models"

# Upstream statuses worth another replica (before the first byte reaches the client).
RETRYABLE_UPSTREAM_STATUSES = frozenset({502, 503})

# Qwen3-VL image geometry (UPSTREAM.md): 16 px patches merged 2x2 -> one token per 32x32 px.
QWEN_PATCH_FACTOR = 32
QWEN_IMAGE_FRAME_TOKENS = 2
QWEN_MAX_ASPECT_RATIO = 200
QWEN_DEFAULT_MIN_PIXELS = 65_536
QWEN_DEFAULT_MAX_PIXELS = 16_777_216
