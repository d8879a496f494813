"""The gateway's ACL user in docs/redis.md is enough for every part that keeps state in Redis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from tests.integration.redis_parts import CHECKS

DOC = Path(__file__).parents[3] / "docs" / "redis.md"


def documented_acl(secret: str) -> list[str]:
    """The ``user ...`` line under ``<!-- acl -->`` in docs/redis.md, as ACL SETUSER arguments."""
    block = re.search(r"<!-- acl -->\n```\n(user [^\n]+)\n```", DOC.read_text())
    assert block is not None, "docs/redis.md lost its ACL line"
    words = block.group(1).split()
    assert words[:2] == ["user", "vlgw-gateway"] and ">SECRET" in words
    return [f">{secret}" if w == ">SECRET" else w for w in words[2:]]


def grant(client: redis.Redis, secret: str) -> None:
    client.execute_command("ACL", "SETUSER", "vlgw-gateway", "reset", *documented_acl(secret))


async def test_every_part_runs_as_the_documented_user(redis_server, redis_url: str) -> None:
    admin = redis.Redis(port=redis_server.port)
    grant(admin, "s3cret")
    url = f"redis://vlgw-gateway:s3cret@127.0.0.1:{redis_server.port}/0"
    try:
        for check in CHECKS:
            await check(url)  # type: ignore[misc]
        assert admin.execute_command("ACL", "LOG") == []  # nothing was denied along the way
        with redis.Redis.from_url(url) as denied, pytest.raises(redis.exceptions.NoPermissionError):
            denied.set("other-app:key", "x")  # nothing outside vlgw:*
    finally:
        admin.execute_command("ACL", "DELUSER", "vlgw-gateway")
        admin.execute_command("ACL", "LOG", "RESET")
        admin.close()
