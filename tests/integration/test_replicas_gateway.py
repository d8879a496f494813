"""Several replicas behind the gateway: a replica killed under load, affinity, admission control."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from tests.images import bare_b64, photo_jpeg, png_bytes
from tests.integration.conftest import emulator_stats, set_faults
from tests.servers import free_port, wait_for_port


class EmulatorProcess:
    """``vlgw emulator`` as its own process, so it can be killed for real (SIGKILL) and revived."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmulatorProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "emulator",
                "--port",
                str(self.port),
                "--request-log-size",
                "0",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()


@pytest.fixture
def three_emulators():
    emulators = [EmulatorProcess("--per-token-ms", "5").start() for _ in range(3)]
    yield emulators
    for emulator in emulators:
        emulator.stop()


@pytest.mark.slow
def test_replica_killed_under_load_loses_no_request(three_emulators, make_gateway) -> None:
    gw = make_gateway(
        [e.url for e in three_emulators],
        upstream_health_interval=0.5,
        upstream_eject_seconds=1.0,
        upstream_routing="least_outstanding",
    )
    victim = three_emulators[1]
    body = {"image": bare_b64(png_bytes()), "prompt": "hi", "max_tokens": 16}

    def one(i: int) -> int:
        if i == 60:
            victim.kill()
        return httpx.post(f"{gw.url}/v1/qwen-vl", json=body, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(240)))
    assert Counter(statuses) == {200: 240}
    ready = gw.client.get("/readyz").json()["upstream"]
    victim_name = next(name for name, r in ready.items() if r["url"] == victim.url)
    assert ready[victim_name]["in_rotation"] is False
    # Back on the same port: re-admitted by the health checks.
    revived = EmulatorProcess("--per-token-ms", "5")
    revived.port, revived.url = victim.port, victim.url
    three_emulators[1] = revived.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if gw.client.get("/readyz").json()["upstream"][victim_name]["in_rotation"]:
            break
        time.sleep(0.2)
    assert gw.client.get("/readyz").json()["upstream"][victim_name]["in_rotation"] is True
    metrics = gw.client.get("/metrics").text
    assert "gateway_upstream_retries_total" in metrics


@pytest.mark.slow
def test_same_image_lands_on_one_replica(three_emulators, make_gateway) -> None:
    gw = make_gateway([e.url for e in three_emulators], cache_enabled=False)
    popular = bare_b64(photo_jpeg(640, 480, seed=5))
    others = [bare_b64(photo_jpeg(320, 240, seed=100 + i)) for i in range(20)]

    def one(i: int) -> int:
        image = popular if i % 3 == 0 else others[i % 20]  # 100 sends of one photo among 300
        return httpx.post(
            f"{gw.url}/v1/qwen-vl", json={"image": image, "prompt": "hi"}, timeout=30
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert set(pool.map(one, range(300))) == {200}
    stats = [httpx.get(f"{e.url}/emulator/stats").json() for e in three_emulators]
    popular_sha = max(
        (sha for s in stats for sha in s["images"]),
        key=lambda sha: sum(s["images"].get(sha, 0) for s in stats),
    )
    per_replica = [s["images"].get(popular_sha, 0) for s in stats]
    assert sum(per_replica) == 100
    assert max(per_replica) >= 95, per_replica
    # The other photos still spread over the replicas: affinity did not pile everything on one.
    assert min(s["chat_requests"] for s in stats) > 0


def test_admission_control_sheds_fast_beyond_cap_and_queue(emulator, make_gateway) -> None:
    gw = make_gateway(
        [emulator.url],
        upstream_max_inflight=2,
        upstream_queue_size=2,
        upstream_queue_timeout=5,
        cache_enabled=False,
    )
    set_faults(emulator, prefill_ms=1500)
    body = {"image": bare_b64(png_bytes()), "prompt": "hi"}

    def one(_: int) -> tuple[int, float, dict]:
        started = time.monotonic()
        response = httpx.post(f"{gw.url}/v1/qwen-vl", json=body, timeout=30)
        return response.status_code, time.monotonic() - started, dict(response.headers)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    ok = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    assert len(ok) == 4 and len(shed) == 4  # 2 in flight + 2 queued; the rest refused
    assert all(int(r[2]["retry-after"]) >= 1 for r in shed)
    assert max(r[1] for r in shed) < 1.0  # refused at once, not after the 1.5 s the admitted ones took
    assert emulator_stats(emulator)["chat_requests"] == 4
    text = gw.client.get("/metrics").text
    shed_total = next(
        line for line in text.splitlines() if line.startswith("gateway_admission_rejections_total ")
    )
    assert float(shed_total.split()[1]) >= 4  # (the registry is shared with the rest of this test process)
