"""Where things live in Redis, and the hash tags that let every multi-key script run on a Cluster.

Redis Cluster runs a script (or MULTI) only when all its keys hash to one slot. A key's slot is
taken from the text between the first ``{`` and the next ``}`` (its hash tag) when there is one,
so every key that a script touches together carries the same tag:

=========================================  ======  ==============================================
key                                        type    what
=========================================  ======  ==============================================
``vlgw:lim:{<key name>}:rpm``              STRING  GCRA arrival time (ms) of requests per minute
``vlgw:lim:{<key name>}:tpm``              STRING  same for tokens; one script reads both
``vlgw:lim:{<key name>}:conc``             ZSET    concurrency leases: lease id -> expiry (ms)
``vlgw:cache:{<digest>}``                  STRING  a cached answer (msgpack)
``vlgw:cache:{<digest>}:lease``            STRING  single-flight lease of the process computing it
``vlgw:idem:{<digest>}``                   STRING  an Idempotency-Key record
``vlgw:idem:{<digest>}:lease``             STRING  its single-flight lease
``vlgw:{keys}:rec:<sha256>``               HASH    an API key's record
``vlgw:{keys}:name:<name>``                STRING  sha256 of the active key with that name
``vlgw:{keys}:all``                        SET     every sha256 ever created
``vlgw:req:<owner digest>:<request id>``   STRING  a request record (single-key commands only)
``vlgw:feedback``                          STREAM  feedback entries (one key)
``vlgw:usage:<YYYY-MM-DD>:<key name>``     HASH    daily usage (single-key commands, pipelined)
=========================================  ======  ==============================================

The key store's keys share one tag (``{keys}``) because creating a key checks the name index,
writes the record and adds it to the set in one script; so the whole key store lives on one
cluster node. It is small (one hash per key) and the gateway caches lookups, so that is no hot
spot. Pipelines of single-key commands (usage, request records) need no common slot: the cluster
client splits them by node.
"""

from __future__ import annotations

import structlog

from gateway.store.redis import ResilientRedis, StoreUnavailable

log = structlog.get_logger("gateway.store")

KEYS_TAG = "{keys}"


def hash_tag(value: str) -> str:
    """``{value}``, with ``%``, ``{`` and ``}`` percent-encoded so the whole value is the tag.

    A key name may contain braces; unescaped, ``}`` would end the tag early (``{}`` even leaves
    none, and the keys of one script would land in different slots). Percent-encoding is
    one-to-one, so two names never share a tag by accident, and names without those three
    characters read as themselves.
    """
    escaped = value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    # "{}" would be no tag at all; a lone "%" is what no escaped value can be.
    return "{" + (escaped or "%") + "}"


# Before hash tags the key store used three untagged names; a single-node Redis from then is
# moved to the new layout once, at start (RENAME keeps values and TTLs).
_LEGACY_RECORD = "vlgw:key:"
_LEGACY_NAME = "vlgw:keyname:"
_LEGACY_ALL = "vlgw:keys"

# ARGV: the old set, record prefix and name prefix, then the new ones. Walks the old set (one
# entry per API key ever made), not the keyspace, so it costs O(API keys) even beside a big cache.
# The keys it touches are not in KEYS: fine on the single node this runs on (never a cluster).
_MIGRATE = """
if redis.call('EXISTS', ARGV[1]) == 0 then return 0 end
local moved = 1
for _, hash in ipairs(redis.call('SMEMBERS', ARGV[1])) do
  local record = ARGV[2] .. hash
  if redis.call('EXISTS', record) == 1 then
    local name = redis.call('HGET', record, 'name')
    redis.call('RENAME', record, ARGV[4] .. hash)
    moved = moved + 1
    if name and redis.call('GET', ARGV[3] .. name) == hash then
      redis.call('RENAME', ARGV[3] .. name, ARGV[5] .. name)
      moved = moved + 1
    end
  end
end
redis.call('RENAME', ARGV[1], ARGV[6])
return moved
"""


async def migrate_legacy_layout(redis: ResilientRedis) -> int:
    """Rename a pre-hash-tag key store to today's names; the number of keys moved (0: nothing to do).

    Clusters never held the old layout (its scripts could not run there), so they are skipped.
    """
    if redis.cluster:
        return 0
    from gateway.auth import redis_store  # the names are the key store's; imported late (no cycle)

    args = [
        _LEGACY_ALL, _LEGACY_RECORD, _LEGACY_NAME,
        redis_store.RECORD_PREFIX, redis_store.NAME_PREFIX, redis_store.ALL_KEYS,
    ]  # fmt: skip
    try:
        moved = int(await redis.run("layout_migrate", lambda r: r.eval(_MIGRATE, 0, *args)))
    except StoreUnavailable as exc:
        log.info("redis_layout_migration_deferred", error=str(exc))  # Redis is down: said elsewhere
        return 0
    if moved:
        log.info("redis_layout_migrated", keys=moved)
    return moved
