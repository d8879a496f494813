"""Operating the gateway as a process: several workers' metrics, graceful shutdown on SIGTERM."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.images import bare_b64, png_bytes
from tests.integration.conftest import emulator_stats, set_faults
from tests.servers import GatewayProcess

BODY = {"image": bare_b64(png_bytes()), "prompt": "hi", "max_tokens": 64}


def base_env(emulator, tmp_path) -> dict[str, str]:
    return {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_AUTH_DISABLED": "true",
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_CACHE_ENABLED": "false",
    }


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.mark.slow
def test_counters_add_up_across_two_workers(emulator, tmp_path) -> None:
    gw = GatewayProcess({**base_env(emulator, tmp_path), "GATEWAY_WORKERS": "2"}).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ok = list(
                pool.map(lambda _: httpx.post(f"{gw.url}/v1/qwen-vl", json=BODY, timeout=30), range(30))
            )
            bad = list(
                pool.map(
                    lambda _: httpx.post(f"{gw.url}/v1/qwen-vl", json={"image": "x"}, timeout=30), range(7)
                )
            )
        assert [r.status_code for r in ok] == [200] * 30
        assert [r.status_code for r in bad] == [400] * 7
        # Every scrape answers for all workers, whichever worker serves it.
        for _ in range(4):
            text = httpx.get(f"{gw.url}/metrics", timeout=10).text
            assert sample(text, "gateway_requests_total", route="/v1/qwen-vl", code="0") == 30
            assert sample(text, "gateway_requests_total", route="/v1/qwen-vl", code="40001") == 7
            assert sample(text, "gateway_request_duration_seconds_count", route="/v1/qwen-vl") == 37
        assert emulator_stats(emulator)["chat_requests"] == 30
    finally:
        gw.stop()


@pytest.mark.slow
def test_sigterm_lets_admitted_requests_and_streams_finish(emulator, tmp_path) -> None:
    env = {**base_env(emulator, tmp_path), "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "1.5"}
    gw = GatewayProcess(env).start()
    set_faults(emulator, per_token_ms=60, answer_tokens=40)  # each answer takes ~2.5 s

    def stream() -> list[str]:
        with httpx.stream("POST", f"{gw.url}/v1/qwen-vl", json={**BODY, "stream": True}, timeout=30) as r:
            assert r.status_code == 200
            return [line for line in r.iter_lines() if line.startswith("data: ")]

    def whole() -> httpx.Response:
        return httpx.post(f"{gw.url}/v1/qwen-vl", json=BODY, timeout=30)

    pool = concurrent.futures.ThreadPoolExecutor(12)
    try:
        streams = [pool.submit(stream) for _ in range(6)]
        answers = [pool.submit(whole) for _ in range(6)]
        deadline = time.monotonic() + 10
        while emulator_stats(emulator)["active"] < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emulator_stats(emulator)["active"] == 12  # all admitted before the signal
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = httpx.get(f"{gw.url}/readyz", timeout=5)
        assert draining.status_code == 503
        assert "draining" in draining.json()["not_ready"]
        for future in streams:
            events = future.result(timeout=30)
            assert events[-1] == "data: [DONE]"
            assert json.loads(events[-2][6:])["code"] == 0
        for future in answers:
            response = future.result(timeout=30)
            assert response.status_code == 200 and response.json()["code"] == 0
        # uvicorn re-raises the signal it handled once it has shut down cleanly: exit by SIGTERM.
        assert gw.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert emulator_stats(emulator)["cancelled"] == 0
    finally:
        pool.shutdown(wait=False)
        gw.stop()
