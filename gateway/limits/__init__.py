"""Per-key limits (rpm, tpm, concurrency) on Redis or in-process, with a Redis failure policy.

Typical use in a route, before any image work or upstream call::

    decision = await limiter.check(principal, estimated_tokens)    # 42901 / 42902
    async with limiter.concurrency(principal):                      # 42903
        answer = await upstream(...)
    await limiter.reconcile(principal, estimated_tokens, answer.usage.total_tokens)
    response.headers.update(decision.headers())
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
