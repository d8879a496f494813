"""The gateway on a real Sentinel group (one primary, one replica, three redis-sentinel processes).

The parts that keep state in Redis work through ``redis+sentinel://``; then the primary is
replaced under load from a real gateway process (killed, or switched over with SENTINEL FAILOVER):
no answer is a 5xx, the gateway follows the new primary without a restart, and the key's limit
holds across the change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from gateway.limits.redis_backend import state_key
from tests.integration.conftest import create_key
from tests.integration.load import Load, assert_cache_shared_after_failover, assert_limit_held_through_outage
from tests.integration.redis_parts import CHECKS
from tests.redis_topologies import SERVICE, SentinelGroup
from tests.servers import GatewayProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelGroup]:
    group = SentinelGroup().start()
    yield group
    group.stop()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_part_works_through_sentinel(sentinels: SentinelGroup, check: Callable[[str], object]) -> None:
    with sentinels.node(sentinels.primary()) as primary:
        primary.flushall()
    asyncio.run(check(sentinels.url))  # type: ignore[arg-type]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["kill", "sentinel failover"])
def test_primary_replaced_under_load_no_5xx_and_the_limit_holds(how: str, emulator, tmp_path) -> None:
    """``kill``: the primary crashes. ``sentinel failover``: an operator's switch-over, where the old
    primary lives on as a replica and answers the gateway's open connections with READONLY."""
    group = SentinelGroup().start()
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": group.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gw = None
    try:
        limit = 120
        key = create_key(env, "failover-app", "--rpm", str(limit))
        gw = GatewayProcess(env).start()
        load = Load([gw.url], key).start()
        started = time.monotonic()
        time.sleep(3)  # the burst is spent: the key is refused more than admitted from here on
        if how == "kill":
            old = group.kill_primary()
        else:
            old = group.primary()
            with group.node(group.sentinel_ports[0]) as sentinel:
                sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        killed = time.monotonic()
        new = group.wait_promoted(old)
        promoted = time.monotonic()
        time.sleep(4)  # the gateway finds the new primary and keeps limiting there
        load.stop()
        summary = assert_limit_held_through_outage(load, limit, started, killed)
        with group.node(new) as primary:  # the gateway writes to the promoted replica
            assert primary.exists(state_key("failover-app", "rpm"))
        store = httpx.get(f"{gw.url}/readyz", timeout=5).json()["store"]
        assert not store["degraded"], store
        open_key = create_key(env, "failover-cache")  # no limits: the cache is the point here

        def primary_has(pattern: str) -> bool:
            with group.node(new) as primary:
                return any(True for _ in primary.scan_iter(match=pattern))

        assert_cache_shared_after_failover([gw.url], open_key, primary_has)
        print(f"sentinel {how}: new primary after {promoted - killed:.1f}s; {summary}")
    finally:
        if gw is not None:
            gw.stop()
        group.stop()
