"""Issue #13: when Redis dies, the local fallback limits stay near the truth.

Before: the fallback buckets started full, and a key limited to 120/min got 324 answers in 30 s.
Here two real gateway processes (GATEWAY_REPLICAS=2) share a real redis-server; the key is
driven past its limit, the server is killed mid-run, and the answers counted afterwards. GCRA's
truth for a key that is already at its limit is its rate: ``limit x seconds / 60``; the gateways
together may exceed that by at most 10 % (plus one request per process at the window's edge).
"""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import create_key
from tests.integration.load import Load
from tests.servers import GatewayProcess, RedisServer

pytestmark = pytest.mark.slow

LIMIT = 120  # per minute, as in the issue
AFTER_KILL = 20.0  # seconds of load counted after Redis is gone
PROCESSES = 2


@pytest.mark.timeout(180)
def test_killing_redis_mid_run_keeps_a_saturated_key_at_its_rate(emulator, tmp_path) -> None:
    redis = RedisServer().start()
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_REPLICAS": str(PROCESSES),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gateways = []
    try:
        key = create_key(env, "outage-app", "--rpm", str(LIMIT))
        gateways = [GatewayProcess(env).start() for _ in range(PROCESSES)]
        load = Load([gw.url for gw in gateways], key).start()
        deadline = time.monotonic() + 30
        while load.statuses()[429] < 50:  # both processes have seen the key refused by Redis
            assert time.monotonic() < deadline, load.statuses()
            time.sleep(0.1)
        redis.stop()  # SIGKILL: no goodbye to the clients
        killed = time.monotonic()
        time.sleep(AFTER_KILL)
        answers = load.stop()

        after = [a for a in answers if a.sent >= killed]
        assert after and not [a for a in after if a.status >= 500 or a.status == 0]
        admitted = sum(1 for a in after if a.status == 200)
        seconds = max(a.done for a in after) - killed
        truth = LIMIT * seconds / 60
        assert admitted <= truth * 1.10 + PROCESSES, (admitted, truth, load.statuses(since=killed))
        assert admitted >= 1  # limited, not shut
        print(f"after the kill: {admitted} admitted in {seconds:.1f}s (truth {truth:.1f})")
    finally:
        for gw in gateways:
            gw.stop()
        redis.stop()
