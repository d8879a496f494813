"""Hash tags (gateway/store/layout.py): one whole tag per key name, whatever the name holds."""

from __future__ import annotations

from redis.crc import key_slot

from gateway.limits.redis_backend import state_key
from gateway.store.layout import hash_tag


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_a_name_with_braces_or_percent_stays_one_whole_tag() -> None:
    for name in ["app", "}", "{", "{}", "a}b{c", "50%", "%7D", ""]:
        slots = {slot(state_key(name, kind)) for kind in ("rpm", "tpm", "conc")}
        assert len(slots) == 1, name
        assert hash_tag(name).count("{") == 1 and hash_tag(name).count("}") == 1
    assert hash_tag("app") == "{app}"
    assert len({hash_tag(n) for n in ["}", "%7D", "%257D", "{"]}) == 4  # one-to-one
