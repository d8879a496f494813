"""The gateway on a real three-node Redis Cluster (redis-server --cluster-enabled, on loopback).

Every multi-key script must find its keys in one slot: these tests run the limiter, the cache
and its single-flight leases, idempotency, the key store and the devex store on the cluster, with
key names chosen so their state lands on every node, and then two real gateway processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from gateway.auth import redis_store
from gateway.cache.flight import SingleFlight
from gateway.cache.idempotency import IdempotencyStore
from gateway.limits.redis_backend import state_key
from tests.integration.conftest import create_key, emulator_stats
from tests.integration.load import Load, assert_cache_shared_after_failover, assert_limit_held_through_outage
from tests.integration.redis_parts import CHECKS, NAMES, check_limiter
from tests.integration.test_limits import BODY, hammer
from tests.redis_topologies import RedisClusterNodes
from tests.servers import GatewayProcess
from tests.unit.store.test_redis_acl import grant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterNodes]:
    nodes = RedisClusterNodes().start()
    yield nodes
    nodes.stop()


@pytest.fixture
def clean_cluster(cluster: RedisClusterNodes) -> RedisClusterNodes:
    cluster.flush()
    return cluster


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_part_works_on_the_cluster(
    clean_cluster: RedisClusterNodes, check: Callable[[str], object]
) -> None:
    asyncio.run(check(clean_cluster.url))  # type: ignore[arg-type]


def test_every_part_runs_as_the_documented_acl_user(clean_cluster: RedisClusterNodes) -> None:
    for port in clean_cluster.ports:
        with clean_cluster.node(port) as node:
            grant(node, "s3cret")
    url = clean_cluster.url.replace("://", "://vlgw-gateway:s3cret@")
    for check in CHECKS:
        asyncio.run(check(url))  # type: ignore[arg-type]
    for port in clean_cluster.ports:
        with clean_cluster.node(port) as node:
            assert node.execute_command("ACL", "LOG") == [], port
            node.execute_command("ACL", "DELUSER", "vlgw-gateway")


def test_limit_state_is_spread_over_every_node(clean_cluster: RedisClusterNodes) -> None:
    asyncio.run(check_limiter(clean_cluster.url))
    per_node = clean_cluster.keys_per_node("vlgw:lim:*")
    assert all(count > 0 for count in per_node.values()), per_node


def test_the_keys_of_each_script_share_one_slot(cluster: RedisClusterNodes) -> None:
    node = cluster.node(cluster.ports[0])

    def slot(key: str) -> int:
        return int(node.execute_command("CLUSTER", "KEYSLOT", key))

    flight = SingleFlight(None, prefix="vlgw:cache", wait_timeout=1)  # type: ignore[arg-type]
    idem = IdempotencyStore(None, ttl=1, wait_timeout=1)  # type: ignore[arg-type]
    for name in [*NAMES, "{", "}", "{}", "a{b}c"]:
        assert len({slot(state_key(name, kind)) for kind in ("rpm", "tpm", "conc")}) == 1, name
        assert slot(flight.value_key(name)) == slot(flight.lease_key(name))
        record = idem.record_key(name, "k")
        assert slot(idem.flights.value_key(record)) == slot(idem.flights.lease_key(record))
        # different names get different tags: state is not piled onto one slot
    assert len({slot(state_key(name, "rpm")) for name in NAMES}) > 1
    store_keys = [
        redis_store.RECORD_PREFIX + "ab" * 32,
        redis_store.NAME_PREFIX + "app",
        redis_store.ALL_KEYS,
    ]
    assert len({slot(key) for key in store_keys}) == 1


@pytest.mark.timeout(180)
def test_two_gateway_processes_share_limits_and_answers_on_the_cluster(
    clean_cluster: RedisClusterNodes, emulator, tmp_path
) -> None:
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": clean_cluster.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_REPLICAS": "2",
        "GATEWAY_LOG_LEVEL": "warning",
        # Exact counts need every check to reach the cluster: on a busy CI machine a call can lag
        # past the 0.1 s default and fall back to local limits by design (not this test's point).
        "GATEWAY_REDIS_TIMEOUT": "2",
    }
    key = create_key(env, "cluster-app", "--rpm", "10")  # the CLI opens the cluster as the server does
    gateways = [GatewayProcess(env).start(), GatewayProcess(env).start()]
    try:
        codes = Counter(r.status_code for r in hammer(gateways, key, 30, workers=6))
        assert codes == {200: 10, 429: 20}, codes
        other = create_key(env, "cluster-idem")
        headers = {"authorization": f"Bearer {other}", "idempotency-key": "order-7"}
        body = {**BODY, "temperature": 1.0}
        upstream_calls = emulator_stats(emulator)["chat_requests"]
        first = httpx.post(f"{gateways[0].url}/v1/qwen-vl", json=body, headers=headers, timeout=30)
        again = httpx.post(f"{gateways[1].url}/v1/qwen-vl", json=body, headers=headers, timeout=30)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert again.json()["text"] == first.json()["text"]
        assert emulator_stats(emulator)["chat_requests"] == upstream_calls + 1  # replayed, not asked again
        for gw in gateways:
            store = httpx.get(f"{gw.url}/readyz", timeout=5).json()["store"]
            assert store["ok"] and not store["degraded"], store
    finally:
        for gw in gateways:
            gw.stop()


@pytest.mark.timeout(240)
def test_a_primary_killed_under_load_fails_over_with_no_5xx_and_the_limit_held(emulator, tmp_path) -> None:
    nodes = RedisClusterNodes(replicas=1).start()  # three primaries, each with a replica
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": nodes.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gw = None
    try:
        limit, name = 120, "cluster-failover"
        key = create_key(env, name, "--rpm", str(limit))
        gw = GatewayProcess(env).start()
        load = Load([gw.url], key).start()
        started = time.monotonic()
        time.sleep(3)  # the burst is spent: the key is refused more than admitted from here on
        state = state_key(name, "rpm")
        old = nodes.primary_of(state)
        nodes.kill(old)  # the primary holding this key's limit state
        killed = time.monotonic()
        new = nodes.wait_failover(state, old)
        promoted = time.monotonic()
        time.sleep(4)  # the gateway follows the slot to the promoted replica
        load.stop()
        summary = assert_limit_held_through_outage(load, limit, started, killed)
        with nodes.node(new) as primary:
            assert primary.exists(state)
        store = httpx.get(f"{gw.url}/readyz", timeout=5).json()["store"]
        assert not store["degraded"], store
        open_key = create_key(env, "failover-cache")  # no limits: the cache is the point here

        def cluster_has(pattern: str) -> bool:
            return sum(nodes.keys_per_node(pattern).values()) > 0

        assert_cache_shared_after_failover([gw.url], open_key, cluster_has)
        print(f"cluster failover {promoted - killed:.1f}s; {summary}")
    finally:
        if gw is not None:
            gw.stop()
        nodes.stop()
