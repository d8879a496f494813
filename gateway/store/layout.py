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
``vlgw:{keys}:key:<sha256>``               HASH    an API key's record
``vlgw:{keys}:name:<name>``                STRING  sha256 of the current key with that name
``vlgw:{keys}:old:<name>``                 SET     its rotated-out keys
``vlgw:{keys}:all``                        SET     every sha256 ever created
``vlgw:{keys}:secret``, ``…:layout``       STRING  signing secret, layout version
``vlgw:req:<owner digest>:<request id>``   STRING  a request record (single-key commands only)
``vlgw:feedback``                          STREAM  feedback entries (one key)
``vlgw:usage:<YYYY-MM-DD>:<key name>``     HASH    daily usage (single-key commands, pipelined)
=========================================  ======  ==============================================

The key store's keys share one tag (``{keys}``) because creating, rotating and revoking a key
change several of them in one script (gateway/auth/redis_store.py); so the whole key store lives
on one cluster node. It is small (one hash per key) and the gateway caches lookups, so that is no hot
spot. Pipelines of single-key commands (usage, request records) need no common slot: the cluster
client splits them by node.
"""

from __future__ import annotations


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
