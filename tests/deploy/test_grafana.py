"""The Grafana dashboard and its provisioning: structure, and every query against real metrics."""

from __future__ import annotations

import json

import pytest

from tests.deploy.helpers import ROOT, compose_model, load_yaml, selectors, unknown_references

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "vlgw.json"


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels() for t in p["targets"]]


def test_dashboard_has_a_stable_uid_and_unique_panel_ids() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "vlgw-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_uses_the_provisioned_datasource() -> None:
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    for panel in _panels():
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


@pytest.mark.parametrize(
    ("title", "expr"), _targets(), ids=[f"{t}:{i}" for i, (t, _) in enumerate(_targets())]
)
def test_every_query_parses_and_uses_exported_metrics(title: str, expr: str) -> None:
    assert unknown_references(expr) == []


def test_dashboard_covers_what_operators_watch() -> None:
    used = {name for _, expr in _targets() for name, _ in selectors(expr)}
    wanted = {
        "gateway_requests_total": "request rate, error codes, limits hit",
        "gateway_request_duration_seconds_bucket": "p50/p95/p99",
        "gateway_time_to_first_token_seconds_bucket": "time to first token",
        "gateway_cache_requests_total": "cache hit ratio",
        "gateway_tokens_total": "tokens/s",
        "gateway_limit_decisions_total": "limits hit by key",
        "gateway_upstream_healthy": "replica health",
        "vllm:num_requests_running": "vLLM running",
        "vllm:num_requests_waiting": "vLLM waiting",
        "vllm:kv_cache_usage_perc": "KV cache",
        "DCGM_FI_DEV_FB_USED": "GPU memory",
        "DCGM_FI_DEV_GPU_TEMP": "GPU temperature",
    }
    missing = {what for name, what in wanted.items() if name not in used}
    assert not missing


def test_provisioning_points_at_the_compose_services() -> None:
    services = compose_model("base")["services"]
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "vlgw.yml")["providers"]
    mounts = {v["target"]: v["source"] for v in services["grafana"]["volumes"]}
    assert (ROOT / mounts[provider["options"]["path"]] / DASHBOARD.name).exists()
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
