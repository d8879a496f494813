"""The gateway's ACL user in deploy/redis/users.acl (what compose and Kubernetes load) is enough for
every part that keeps state in Redis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from tests.integration.redis_parts import CHECKS

ACL_FILE = Path(__file__).parents[3] / "deploy" / "redis" / "users.acl"


def documented_acl(secret: str) -> list[str]:
    """The ``user gateway ...`` line of deploy/redis/users.acl, as ACL SETUSER arguments."""
    line = re.search(r"^user gateway (.+)$", ACL_FILE.read_text(), re.MULTILINE)
    assert line is not None, "deploy/redis/users.acl lost the gateway user"
    words = line.group(1).split()
    assert "#@GATEWAY_PASSWORD_SHA256@" in words
    return [f">{secret}" if w == "#@GATEWAY_PASSWORD_SHA256@" else w for w in words]


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
