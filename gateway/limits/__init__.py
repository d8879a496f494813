"""Per-key limits (rpm, tpm, concurrency) on Redis or in-process, with a Redis failure policy.

Used by one caller, the pipeline's gate (gateway/serving/gate.py), before any image work::

    decision = await limiter.evaluate(principal, estimated_tokens)  # refused: decision.error() (42901/42902)
    lease = await limiter.acquire(principal)                         # 42903 when full
    ...                                                              # the answer
    await limiter.reconcile(principal, estimated_tokens, usage.total_tokens); await lease.release()
"""

from gateway.auth.principal import Limits
from gateway.limits.backend import LimitBackend, RateOutcome
from gateway.limits.decision import LimitDecision, Quota
from gateway.limits.limiter import Lease, Limiter
from gateway.limits.local import LocalBackend
from gateway.limits.redis_backend import RedisBackend

__all__ = [
    "Lease",
    "LimitBackend",
    "LimitDecision",
    "Limiter",
    "Limits",
    "LocalBackend",
    "Quota",
    "RateOutcome",
    "RedisBackend",
]
