"""Limit state in Redis, shared by every gateway process: one Lua script per operation.

Scripts read the clock with ``TIME`` on the Redis server, so processes with skewed clocks
still agree. Keys (the hash tag keeps one key's state in one cluster slot; braces in a name are
percent-encoded, gateway/store/layout.py):

    vlgw:lim:{<key name>}:rpm    STRING  GCRA theoretical arrival time (ms), expires when whole
    vlgw:lim:{<key name>}:tpm    STRING  same, for tokens
    vlgw:lim:{<key name>}:conc   ZSET    lease id -> lease expiry (ms)
"""

from __future__ import annotations

from typing import Any

from gateway.limits.backend import RateOutcome
from gateway.limits.decision import Kind, Quota
from gateway.store.layout import hash_tag
from gateway.store.redis import ResilientRedis

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

# KEYS: rpm, tpm. ARGV: rpm limit, tpm limit (0 = not checked), token cost, window (ms).
# Returns {allowed, refused (0 none, 1 rpm, 2 tpm), retry_ms, rpm_remaining, rpm_reset_ms,
# tpm_remaining, tpm_reset_ms}; a remaining of -1 means the kind was not checked.
HIT = (
    _NOW
    + """
local window = tonumber(ARGV[4])
local eps = 1e-6
local function step(key, limit, cost)
  local interval = window / limit
  local stored = redis.call('GET', key)
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  local new_tat = tat + cost * interval
  local ok = cost <= limit and new_tat - window <= now + eps
  local retry, at = 0, new_tat
  if not ok then
    at = tat
    if cost > limit then retry = window else retry = new_tat - window - now end
  end
  local remaining = math.floor((window - (at - now)) / interval + eps)
  remaining = math.max(0, math.min(limit, remaining))
  return ok, retry, remaining, at - now, new_tat
end
local specs = {{KEYS[1], tonumber(ARGV[1]), 1}, {KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3])}}
local results, allowed, refused, retry = {}, true, 0, 0
for i = 1, 2 do
  local s = specs[i]
  if s[2] > 0 then
    local ok, r, remaining, reset, new_tat = step(s[1], s[2], s[3])
    results[i] = {remaining, reset, new_tat}
    if not ok then
      allowed = false
      if refused == 0 then refused = i end
      retry = math.max(retry, r)
    end
  end
end
if allowed then
  for i = 1, 2 do
    if results[i] then
      local new_tat = results[i][3]
      redis.call('SET', specs[i][1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
    end
  end
end
local out = {allowed and 1 or 0, refused, string.format('%.3f', retry)}
for i = 1, 2 do
  if results[i] then
    table.insert(out, results[i][1])
    table.insert(out, string.format('%.3f', results[i][2]))
  else
    table.insert(out, -1)
    table.insert(out, '0')
  end
end
return out
"""
)

# KEYS: rpm or tpm. ARGV: limit, delta (negative = refund), window (ms). Returns TAT - now (ms).
ADJUST = (
    _NOW
    + """
local interval = tonumber(ARGV[3]) / tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
tat = tat + tonumber(ARGV[2]) * interval
if tat <= now then
  redis.call('DEL', KEYS[1])
  return '0'
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
return string.format('%.3f', tat - now)
"""
)

# KEYS: conc. ARGV: limit, lease id, ttl (ms). Returns 1 when the slot was taken.
ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1000)
return 1
"""
)

# KEYS: conc. ARGV: lease id, ttl (ms). Re-adds a lease that was reaped: the request is alive.
RENEW = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1000)
return 1
"""
)


def state_key(subject: str, kind: str) -> str:
    return f"vlgw:lim:{hash_tag(subject)}:{kind}"


def _quota(kind: Kind, limit: int | None, remaining: Any, reset_ms: Any, window: float) -> Quota | None:
    if limit is None:
        return None
    return Quota(
        kind=kind, limit=limit, remaining=int(remaining), reset=float(reset_ms) / 1000, window=window
    )


class RedisBackend:
    """:class:`~gateway.limits.backend.LimitBackend` on Redis, every call through ResilientRedis."""

    name = "redis"

    def __init__(self, redis: ResilientRedis) -> None:
        self.redis = redis
        client = redis.client
        self._hit = client.register_script(HIT)
        self._adjust = client.register_script(ADJUST)
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)

    async def hit(
        self, subject: str, rpm: int | None, tpm: int | None, cost: int, window: float
    ) -> RateOutcome:
        keys = [state_key(subject, "rpm"), state_key(subject, "tpm")]
        args = [rpm or 0, tpm or 0, cost, window * 1000]
        raw = await self.redis.run("limit_hit", lambda r: self._hit(keys=keys, args=args, client=r))
        allowed, refused, retry_ms, rpm_rem, rpm_reset, tpm_rem, tpm_reset = raw
        quotas = tuple(
            q
            for q in (
                _quota("rpm", rpm, rpm_rem, rpm_reset, window),
                _quota("tpm", tpm, tpm_rem, tpm_reset, window),
            )
            if q is not None
        )
        kinds: dict[int, Kind] = {1: "rpm", 2: "tpm"}
        return RateOutcome(
            allowed=bool(allowed),
            quotas=quotas,
            refused=kinds.get(int(refused)),
            retry_after=float(retry_ms) / 1000,
        )

    async def adjust(self, subject: str, limit: int, delta: int, window: float, kind: Kind = "tpm") -> None:
        await self.charge(subject, limit, delta, window, kind)

    async def charge(self, subject: str, limit: int, delta: int, window: float, kind: Kind = "tpm") -> float:
        """:meth:`adjust`, returning how far the bucket is from whole afterwards (TAT - now, seconds)."""
        keys = [state_key(subject, kind)]
        args = [limit, delta, window * 1000]
        raw = await self.redis.run("limit_adjust", lambda r: self._adjust(keys=keys, args=args, client=r))
        return float(raw) / 1000

    async def acquire(self, subject: str, limit: int, lease_id: str, ttl: float) -> bool:
        keys = [state_key(subject, "conc")]
        args: list[str | float] = [limit, lease_id, ttl * 1000]
        return bool(
            await self.redis.run("limit_acquire", lambda r: self._acquire(keys=keys, args=args, client=r))
        )

    async def renew(self, subject: str, lease_id: str, ttl: float) -> None:
        keys = [state_key(subject, "conc")]
        args: list[str | float] = [lease_id, ttl * 1000]
        await self.redis.run("limit_renew", lambda r: self._renew(keys=keys, args=args, client=r))

    async def release(self, subject: str, lease_id: str) -> None:
        await self.redis.run("limit_release", lambda r: r.zrem(state_key(subject, "conc"), lease_id))
