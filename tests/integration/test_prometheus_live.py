"""The dashboard and the alert rules on a real Prometheus scraping a real gateway and emulator.

Everything runs on loopback as separate processes: redis-server, the emulator (``vlgw emulator``),
the gateway (``vlgw serve``, /metrics on its own port behind a bearer token read from a file, as
compose runs it) and Prometheus (Debian's binary, scripts/install-validators.sh). Prometheus
scrapes every second and evaluates a copy of deploy/prometheus/alerts.yml in which only the
durations are compressed (:data:`FACTOR`: one minute of the real rules is two seconds here,
``[5m]`` becomes ``[10s]`` and ``for: 1m`` becomes ``for: 2s``); metric names, labels,
aggregations and thresholds are the real ones, which :func:`test_the_test_rules_differ_only_in_durations`
checks.

- Alerts: each fault the rules name is produced for real (a killed redis-server, a stopped
  emulator, a slow upstream with a full admission queue, upstream 500s, a stopped exporter, an
  engine with a full KV cache and a queue) and the alert must go
  ``firing`` in Prometheus's own rule engine, then back to ``inactive`` once the fault is
  repaired. No other alert may fire meanwhile.
- Dashboard: after traffic of every kind, every query of every panel in
  deploy/grafana/dashboards/vlgw.json returns at least one series.

Two sources are not on this machine: a GPU (so no dcgm-exporter) and vLLM's prefix cache (the
emulator does not model one, gateway/emulator/metrics.py). For them Prometheus scrapes
:data:`RECORDED_DCGM` and :data:`RECORDED_VLLM_PREFIX_CACHE`, served as they are by a static
HTTP server: series in the exporters' exposition format (names and labels of dcgm-exporter 4.x
default counters and of vLLM 0.33 /metrics, UPSTREAM.md "Responses"), values made up. They
prove that the GPU and prefix-cache queries fit those formats, not anything about a GPU; the GPU
alerts fire on :data:`RECORDED_DCGM_HOT_AND_FULL`, the one fault made up rather than produced.

Time is compressed by :data:`FACTOR` in the test copy of the rules: every window and ``for:``, and
the seconds that the two latency alerts compare against (VlgwLatencyP99High's 30 s becomes 1 s,
VlgwTimeToFirstTokenHigh's 5 s 0.17 s), so a slow upstream of 1.5 s provokes them in seconds.
Every alert is provoked, the gateway's own death (VlgwGatewayDown) last.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.images import data_uri, photo_jpeg, png_bytes
from tests.integration.conftest import create_key
from tests.servers import GatewayProcess, RedisServer, StaticFiles, ThreadedServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "vlgw.json"
FACTOR = 30  # real seconds per test second: 5m -> 10s, 1m -> 2s
SCRAPE = "1s"
# The Grafana variable, as Grafana would set it for a short range at a 1 s scrape interval.
RATE_INTERVAL = "1m"
# The alerts each phase provokes; every other rule must stay silent throughout.
PROVOKED = {
    "VlgwRedisDegraded",
    "VlgwHighErrorRatio",
    "VlgwNoHealthyUpstream",
    "VllmDown",
    "VlgwShedding",
    "GpuExporterDown",
    "VlgwLatencyP99High",
    "VlgwTimeToFirstTokenHigh",
    "VlgwGatewayDown",
    "GpuMemoryHigh",
    "GpuTemperatureHigh",
    "VllmQueueBuildingUp",
    "VllmKvCacheNearlyFull",
}

_GPU = (
    'gpu="0",UUID="GPU-00000000-0000-0000-0000-000000000000",pci_bus_id="00000000:18:00.0",'
    'device="nvidia0",modelName="NVIDIA H200",Hostname="gpu-host-1"'
)
RECORDED_DCGM = f"""\
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{{_GPU}}} 14325
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{{_GPU}}} 128920
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{{{_GPU}}} 41
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{{_GPU}}} 87
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{{{_GPU}}} 512.3
"""
# The same GPU, hot and nearly out of memory (GpuMemoryHigh: > 95 % used; GpuTemperatureHigh: > 85 C).
RECORDED_DCGM_HOT_AND_FULL = (
    RECORDED_DCGM.replace("} 14325", "} 4300").replace("} 128920", "} 138945").replace("} 41\n", "} 90\n")
)
RECORDED_VLLM_PREFIX_CACHE = """\
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="qwen3-vl-8b"} 182400
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="qwen3-vl-8b"} 97216
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="needs prometheus (scripts/install-validators.sh)"
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


# --- the test copy of the rules -----------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600}


def compress(duration: str) -> str:
    """A Prometheus duration divided by FACTOR (whole seconds, at least 1 s)."""
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, f"unexpected duration {duration!r}"
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    return f"{max(1, round(seconds / FACTOR))}s"


# Alerts whose threshold is a duration in seconds: compressed like the windows.
SECONDS_THRESHOLD = {"VlgwLatencyP99High", "VlgwTimeToFirstTokenHigh"}
_THRESHOLD = re.compile(r">\s*(\d+(?:\.\d+)?)\s*$")


def compressed_rules() -> dict[str, Any]:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+[smh])\]", lambda m: f"[{compress(m.group(1))}]", rule["expr"])
            if rule["alert"] in SECONDS_THRESHOLD:
                seconds = float(_THRESHOLD.search(rule["expr"]).group(1))  # type: ignore[union-attr]
                rule["expr"] = _THRESHOLD.sub(f"> {seconds / FACTOR:.3f}", rule["expr"].rstrip())
            if "for" in rule:
                rule["for"] = compress(rule["for"])
    return rules


def test_the_test_rules_differ_only_in_durations() -> None:
    real = yaml.safe_load(ALERTS.read_text())
    test = compressed_rules()
    for real_group, test_group in zip(real["groups"], test["groups"], strict=True):
        for a, b in zip(real_group["rules"], test_group["rules"], strict=True):
            strip = re.compile(r"\[\d+[smh]\]")
            real_expr, test_expr = strip.sub("[W]", a["expr"]), strip.sub("[W]", b["expr"])
            if a["alert"] in SECONDS_THRESHOLD:
                real_expr, test_expr = (_THRESHOLD.sub("> T", e.rstrip()) for e in (real_expr, test_expr))
            assert real_expr.rstrip() == test_expr.rstrip(), a["alert"]
            assert {k: v for k, v in a.items() if k not in ("expr", "for")} == {
                k: v for k, v in b.items() if k not in ("expr", "for")
            }


# --- processes -----------------------------------------------------------------------------------


class EmulatorProcess:
    """``vlgw emulator`` on a fixed loopback port, so it can be stopped and started again."""

    def __init__(self, *flags: str) -> None:
        self.flags = flags
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmulatorProcess:
        argv = [sys.executable, "-m", "gateway", "emulator", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += self.flags
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=20)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def faults(self, **knobs: Any) -> None:
        httpx.post(f"{self.url}/emulator/faults", json=knobs, timeout=5).raise_for_status()


class Prometheus:
    """A Prometheus server on a loopback port with its own data directory."""

    def __init__(self, workdir: Path, config: dict[str, Any], rules: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "alerts.yml").write_text(yaml.safe_dump(rules))
        (workdir / "prometheus.yml").write_text(yaml.safe_dump({**config, "rule_files": ["alerts.yml"]}))
        self.argv = [
            "prometheus",
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._ready(), 30, "Prometheus ready")
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alert_states(self) -> dict[str, str]:
        """Each alerting rule's state: inactive, pending or firing."""
        answer = httpx.get(f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=10).json()
        return {rule["name"]: rule["state"] for group in answer["data"]["groups"] for rule in group["rules"]}

    def ever_fired(self, seconds: int) -> set[str]:
        """Every alert that was firing at some point in the last `seconds`."""
        series = self.query(f'max_over_time(ALERTS{{alertstate="firing"}}[{seconds}s])')
        return {s["metric"]["alertname"] for s in series}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.25)


# --- the stack -----------------------------------------------------------------------------------


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # AOF on: keys survive the kill and restart of the Redis-down phase, as in production.
        self.redis = RedisServer(persist=True).start()
        self.emulator = EmulatorProcess().start()
        # A second vLLM stand-in, scraped but not behind the gateway, to saturate on purpose: two
        # running slots of 512 tokens, and every request held in prefill for two minutes.
        self.busy_engine = EmulatorProcess(
            "--max-num-seqs", "2", "--max-model-len", "512", "--prefill-ms", "120000"
        )
        self.busy_engine.start()
        self.held: list[socket.socket] = []
        self.recorded = StaticFiles(
            {
                "/dcgm": (RECORDED_DCGM.encode(), "text/plain; version=0.0.4"),
                "/vllm-prefix-cache": (RECORDED_VLLM_PREFIX_CACHE.encode(), "text/plain; version=0.0.4"),
            }
        )
        self.recorded_server = ThreadedServer(self.recorded).start()
        token = tmp / "metrics_token"
        token.write_text("live-test-metrics-token\n")
        self.metrics_port = free_port()
        self.env = {
            "GATEWAY_UPSTREAM_URLS": self.emulator.url,
            "GATEWAY_REDIS_URL": self.redis.url,
            "GATEWAY_REDIS_TIMEOUT": "0.5",
            "GATEWAY_METRICS_PORT": str(self.metrics_port),
            "GATEWAY_METRICS_TOKEN_FILE": str(token),
            "GATEWAY_DATA_DIR": str(tmp / "data"),
            "GATEWAY_UPSTREAM_HEALTH_INTERVAL": "0.5",
            # Errors must stay errors (not ejections) in the error-ratio phase.
            "GATEWAY_UPSTREAM_RETRIES": "0",
            "GATEWAY_UPSTREAM_EJECT_FAILURES": "1000",
            # Two at a time and no queue: a third concurrent request is shed.
            "GATEWAY_UPSTREAM_MAX_INFLIGHT": "2",
            "GATEWAY_UPSTREAM_QUEUE_SIZE": "0",
            "GATEWAY_LOG_LEVEL": "warning",
        }
        self.key = create_key(self.env, "live-app")
        self.limited_key = create_key(self.env, "live-limited", "--rpm", "1")
        self.gateway = GatewayProcess(self.env).start()
        scrape = {"scrape_interval": SCRAPE, "scrape_timeout": SCRAPE}
        recorded = f"127.0.0.1:{self.recorded_server.port}"
        engines = (self.emulator.port, self.busy_engine.port)
        config = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
            "scrape_configs": [
                {
                    "job_name": "gateway",
                    **scrape,
                    "authorization": {"credentials_file": str(token)},
                    "static_configs": [{"targets": [f"127.0.0.1:{self.metrics_port}"]}],
                },
                {
                    "job_name": "vllm",
                    **scrape,
                    "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in engines]}],
                },
                {
                    "job_name": "dcgm",
                    **scrape,
                    "metrics_path": "/dcgm",
                    "static_configs": [{"targets": [recorded]}],
                },
                {
                    "job_name": "vllm-prefix-cache-recorded",
                    **scrape,
                    "metrics_path": "/vllm-prefix-cache",
                    "static_configs": [{"targets": [recorded]}],
                },
            ],
        }
        self.prometheus = Prometheus(tmp, config, compressed_rules()).start()
        self.client = httpx.Client(base_url=self.gateway.url, timeout=30)
        self.counter = 0
        # Made once: photo_jpeg's noise differs from call to call, and a cache hit needs the same bytes.
        self.image = data_uri(photo_jpeg(320, 240))

    # traffic

    def ask(self, key: str | None = None, **body: Any) -> httpx.Response:
        """One app-route request with a fresh prompt (no cache hit unless `prompt` is given)."""
        self.counter += 1
        payload = {
            "image": self.image,
            "prompt": f"request {self.counter}",
            "max_tokens": 8,
        }
        payload.update(body)
        return self.client.post(
            "/v1/qwen-vl", json=payload, headers={"authorization": f"Bearer {key or self.key}"}
        )

    def stream(self) -> str:
        body = {
            "model": "qwen3-vl",
            "stream": True,
            "max_tokens": 8,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"stream {self.counter}"},
                        {"type": "image_url", "image_url": {"url": self.image}},
                    ],
                }
            ],
        }
        self.counter += 1
        headers = {"authorization": f"Bearer {self.key}"}
        with self.client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            return response.read().decode()

    def burst(self, n: int) -> list[int]:
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return [r.status_code for r in pool.map(lambda _: self.ask(), range(n))]

    def saturate_busy_engine(self, requests: int = 8) -> None:
        """Fill its KV cache (two ~500-token prompts running: 97 %) and queue six more behind them.

        Raw sockets, so that closing them is a client going away, which vLLM (and the emulator)
        answer by aborting the request and freeing its memory."""
        body = json.dumps(
            {"model": "qwen3-vl-8b", "max_tokens": 1, "messages": [{"role": "user", "content": "a" * 1960}]}
        ).encode()
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        for _ in range(requests):
            sock = socket.create_connection(("127.0.0.1", self.busy_engine.port), timeout=5)
            sock.sendall(head.encode() + body)
            self.held.append(sock)

    def release_busy_engine(self) -> None:
        for sock in self.held:
            sock.close()
        self.held.clear()

    def scraped(self) -> None:
        """Wait two scrape intervals, so what just happened is in Prometheus."""
        time.sleep(2.2)

    def wait_alert(self, name: str, state: str, timeout: float = 30) -> None:
        wait_until(lambda: self.prometheus.alert_states().get(name) == state, timeout, f"{name} {state}")

    def close(self) -> None:
        self.release_busy_engine()
        self.client.close()
        self.busy_engine.stop()
        self.prometheus.stop()
        self.gateway.stop()
        self.recorded_server.stop()
        self.emulator.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("prometheus-live"))
    try:
        yield stack
    finally:
        stack.close()


# --- alerts --------------------------------------------------------------------------------------


def test_alerts_fire_under_their_faults_and_resolve(stack: Stack) -> None:
    started = time.monotonic()
    assert stack.ask().status_code == 200
    stack.scraped()
    states = stack.prometheus.alert_states()
    assert set(states) == {r["alert"] for g in compressed_rules()["groups"] for r in g["rules"]}
    assert {name for name, state in states.items() if state != "inactive"} == set(), states

    # In the background of the phases below: a saturated engine (queue and KV cache), which takes
    # the longest to fire (for: 10m, compressed to 20 s).
    stack.saturate_busy_engine()

    # Redis down (a killed redis-server) and upstream 500s, at once: two independent faults. And,
    # as the one fault that cannot be made here for real, a GPU that is hot and full: the
    # recorded exporter now serves 97 % memory used and 90 C.
    stack.redis.stop()
    stack.emulator.faults(error_rate=1.0, error_status=500)
    stack.recorded.files["/dcgm"] = (RECORDED_DCGM_HOT_AND_FULL.encode(), "text/plain; version=0.0.4")
    phase_one = {"VlgwRedisDegraded", "VlgwHighErrorRatio", "GpuMemoryHigh", "GpuTemperatureHigh"}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert stack.ask().status_code >= 500
        states = stack.prometheus.alert_states()
        if all(states[name] == "firing" for name in phase_one):
            break
        time.sleep(0.3)
    assert all(states[name] == "firing" for name in phase_one), states
    stack.redis.start()  # same port and data: the gateway's probe finds it again
    stack.emulator.faults(error_rate=0.0)
    stack.recorded.files["/dcgm"] = (RECORDED_DCGM.encode(), "text/plain; version=0.0.4")
    stack.wait_alert("GpuMemoryHigh", "inactive")
    stack.wait_alert("GpuTemperatureHigh", "inactive")
    wait_until(lambda: stack.ask().status_code == 200, 15, "answers again")
    stack.wait_alert("VlgwRedisDegraded", "inactive")
    # The ratio clears once the compressed 5-minute window holds no error: keep healthy traffic.
    wait_until(
        lambda: (
            stack.ask().status_code == 200
            and stack.prometheus.alert_states()["VlgwHighErrorRatio"] == "inactive"
        ),
        40,
        "error ratio inactive",
    )

    # No healthy replica: the emulator process is stopped.
    stack.emulator.stop()
    stack.wait_alert("VlgwNoHealthyUpstream", "firing")
    stack.wait_alert("VllmDown", "firing")
    stack.emulator.start()
    stack.wait_alert("VlgwNoHealthyUpstream", "inactive")
    stack.wait_alert("VllmDown", "inactive")

    # The saturated engine: both alerts by now or shortly; then its clients go away.
    stack.wait_alert("VllmQueueBuildingUp", "firing")
    stack.wait_alert("VllmKvCacheNearlyFull", "firing")
    stack.release_busy_engine()
    stack.wait_alert("VllmQueueBuildingUp", "inactive")
    stack.wait_alert("VllmKvCacheNearlyFull", "inactive")

    # Shedding: a slow upstream, two in flight at most, no queue; bursts of four for a while.
    # Meanwhile, independently, the GPU exporter (the recorded one) stops answering.
    stack.emulator.faults(prefill_ms=800)
    stack.recorded_server.stop()
    deadline = time.monotonic() + 40
    shed = 0
    while time.monotonic() < deadline and stack.prometheus.alert_states()["VlgwShedding"] != "firing":
        shed += stack.burst(4).count(503)
    assert shed > 0 and stack.prometheus.alert_states()["VlgwShedding"] == "firing"
    stack.emulator.faults(prefill_ms=0)
    stack.wait_alert("GpuExporterDown", "firing")
    stack.recorded_server = ThreadedServer(stack.recorded, stack.recorded_server.port).start()
    stack.wait_alert("GpuExporterDown", "inactive")
    stack.wait_alert("VlgwShedding", "inactive", timeout=40)

    # Slow answers: a 1.5 s prefill (the compressed 30 s and 5 s thresholds are 1 s and 0.17 s).
    stack.emulator.faults(prefill_ms=1500)
    slow = {"VlgwLatencyP99High", "VlgwTimeToFirstTokenHigh"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert stack.ask().status_code == 200
        stack.stream()
        states = stack.prometheus.alert_states()
        if all(states[name] == "firing" for name in slow):
            break
    assert all(states[name] == "firing" for name in slow), states
    stack.emulator.faults(prefill_ms=0)
    stack.wait_alert("VlgwLatencyP99High", "inactive", timeout=40)
    stack.wait_alert("VlgwTimeToFirstTokenHigh", "inactive", timeout=40)

    # Last, the gateway itself dies (SIGKILL: no drain), then comes back on the same port.
    stack.gateway.stop(signal.SIGKILL)
    try:
        stack.wait_alert("VlgwGatewayDown", "firing", timeout=60)
    finally:
        stack.gateway.start()
    stack.wait_alert("VlgwGatewayDown", "inactive", timeout=60)

    fired = stack.prometheus.ever_fired(int(time.monotonic() - started) + 5)
    assert fired == PROVOKED, f"fired: {sorted(fired)}"
    assert {n for n, s in stack.prometheus.alert_states().items() if s != "inactive"} <= {
        "VlgwHighErrorRatio"
    }


# --- dashboard -----------------------------------------------------------------------------------


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows included."""
    out: list[tuple[str, str]] = []

    def visit(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel["title"], target["expr"]))
            visit(panel.get("panels", []))

    visit(json.loads(DASHBOARD.read_text())["panels"])
    return out


def test_every_dashboard_query_returns_series(stack: Stack) -> None:
    if stack.gateway.proc is None:  # an earlier test failed while the gateway was down
        stack.gateway.start()
    # Traffic of every kind the panels show.
    same = {"prompt": "the same question", "temperature": 0, "max_tokens": 64}
    assert stack.ask(**same).headers["x-cache"] == "MISS"
    assert stack.ask(**same).headers["x-cache"] == "HIT"  # cache hits, saved tokens
    assert "data: [DONE]" in stack.stream()  # time to first token
    refused = stack.ask(image=data_uri(b"not an image at all", "image/png"))
    assert refused.status_code == 400, refused.text  # image refusals
    dark = stack.ask(image=data_uri(png_bytes(640, 480, (3, 3, 3)), "image/png"), precheck=True)
    assert dark.json()["code"] == 40009, dark.text  # pre-check refusals
    codes = [stack.ask(key=stack.limited_key).status_code for _ in range(3)]
    assert 429 in codes  # a key over its rate limit
    stack.emulator.faults(error_every=2, error_status=500)
    statuses = {stack.ask().status_code for _ in range(4)}
    assert 200 in statuses and max(statuses) >= 500  # a server-side error code
    stack.emulator.faults(error_every=0)
    stack.scraped()

    empty = []
    for title, expr in panel_queries():
        query = expr.replace("$__rate_interval", RATE_INTERVAL)
        if not stack.prometheus.query(query):
            empty.append(f"{title}: {expr}")
    assert not empty, "panels with no series:\n" + "\n".join(empty)
    assert "live-test-metrics-token" not in stack.gateway.output()


def test_the_metrics_port_requires_the_token(stack: Stack) -> None:
    metrics_url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    assert httpx.get(metrics_url, timeout=5).status_code == 401
    wrong = httpx.get(metrics_url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["code"] == 40101
    token = {"Authorization": "Bearer live-test-metrics-token"}
    assert "gateway_requests_total" in httpx.get(metrics_url, headers=token, timeout=5).text
