"""docs/metrics.md lists every metric of the catalogue; names follow the conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

import gateway.metrics as catalogue

DOC = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
METRICS = [m for m in vars(catalogue).values() if isinstance(m, MetricWrapperBase)]


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m._name)
def test_metric_is_documented_and_well_named(metric: MetricWrapperBase) -> None:
    name = metric._name + ("_total" if metric._type == "counter" else "")
    assert name.startswith("gateway_")
    assert f"`{name}`" in DOC
    assert not {"key_hash", "url", "prompt", "api_key"} & set(metric._labelnames)
