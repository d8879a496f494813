"""Prometheus config and alert rules: promtool, plus every expression checked against the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    ROOT,
    assert_ok,
    compose_model,
    load_yaml,
    require_tool,
    run,
    unknown_references,
)

PROM_DIR = ROOT / "deploy" / "prometheus"
PROMTOOL_HOW = "scripts/install-validators.sh extracts it from Debian's prometheus package"


def _rules() -> list[dict]:
    return [rule for group in load_yaml(PROM_DIR / "alerts.yml")["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    """A full check (promtool also opens the files it names): a copy whose token file exists."""
    promtool = require_tool("promtool", PROMTOOL_HOW)
    token = tmp_path / "metrics_token"
    token.write_text("test-token")
    text = (PROM_DIR / "prometheus.yml").read_text()
    assert "credentials_file: /run/secrets/metrics_token" in text
    (tmp_path / "prometheus.yml").write_text(text.replace("/run/secrets/metrics_token", str(token)))
    shutil.copy(PROM_DIR / "alerts.yml", tmp_path / "alerts.yml")
    assert_ok(run([promtool, "check", "config", str(tmp_path / "prometheus.yml")]))


def test_prometheus_reads_the_metrics_token_compose_gives_it() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    (gateway_job,) = [job for job in config["scrape_configs"] if job["job_name"] == "gateway"]
    prometheus = compose_model("base")["services"]["prometheus"]
    mounted = {secret["target"] for secret in prometheus["secrets"]}
    assert gateway_job["authorization"]["credentials_file"] in mounted
    gateway = compose_model("base")["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_METRICS_TOKEN_FILE"] in mounted


def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool", PROMTOOL_HOW)
    assert_ok(run([promtool, "check", "rules", str(PROM_DIR / "alerts.yml")]))


def test_alert_unit_tests_pass() -> None:
    promtool = require_tool("promtool", PROMTOOL_HOW)
    assert_ok(run([promtool, "test", "rules", str(PROM_DIR / "alerts_test.yml")]))


def test_every_alert_has_a_unit_test() -> None:
    tests = load_yaml(PROM_DIR / "alerts_test.yml")["tests"]
    tested = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules()} == tested


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_alert_expression_uses_exported_metrics(rule: dict) -> None:
    assert unknown_references(rule["expr"]) == []
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_incidents_we_promised_have_alerts() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in _rules()}
    wanted = {
        "DCGM_FI_DEV_FB_USED": "GPU memory",
        "DCGM_FI_DEV_GPU_TEMP": "GPU temperature",
        'code=~"5[0-9]{4}"': "5xx ratio",
        "histogram_quantile(0.99, sum by (le, route) (rate(gateway_request_duration_seconds_bucket": "p99",
        "sum(gateway_upstream_healthy) == 0": "no healthy replica",
        "gateway_redis_degraded": "Redis degraded",
        "vllm:num_requests_waiting": "vLLM queue",
        "vllm:kv_cache_usage_perc": "KV cache",
    }
    for needle, what in wanted.items():
        assert any(needle in expr for expr in exprs.values()), what


def test_scrape_targets_are_the_compose_services() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose_model("base")["services"]
    gateway_target = jobs["gateway"]["static_configs"][0]["targets"]
    assert gateway_target == [f"gateway:{services['gateway']['environment']['GATEWAY_METRICS_PORT']}"]
    (vllm_sd,) = jobs["vllm"]["dns_sd_configs"]
    assert vllm_sd["port"] == 8000
    assert vllm_sd["names"] == services["vllm"]["networks"]["backend"]["aliases"]
    (dcgm,) = jobs["dcgm"]["static_configs"][0]["targets"]
    host, port = dcgm.split(":")
    assert port in services[host]["expose"]
    # The Prometheus container reads the rules from the directory the compose file mounts.
    mount = next(v for v in services["prometheus"]["volumes"] if v["target"] == "/etc/prometheus")
    assert (ROOT / mount["source"] / config["rule_files"][0]).exists()
