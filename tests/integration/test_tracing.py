"""Traces through a real gateway and emulator: the gateway's phases are spans under the caller's
traceparent, and vLLM receives a traceparent naming the gateway's upstream span. Spans are read
from the OpenTelemetry SDK's in-memory exporter (only the OTLP exporter is replaced)."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.ops.tracing import Tracing
from tests.images import bare_b64, png_bytes
from tests.integration.conftest import GatewayUnderTest, gateway_settings
from tests.servers import ThreadedServer

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def test_phases_are_spans_under_the_callers_trace(emulator, tmp_path) -> None:
    exporter = InMemorySpanExporter()
    settings = gateway_settings([emulator.url], tmp_path, tracing_enabled=True, cache_enabled=True)
    tracing = Tracing.from_settings(settings, exporter=exporter)
    server = ThreadedServer(create_app(settings, tracing=tracing)).start()
    gw = GatewayUnderTest(server, settings, None)
    try:
        body = {"image": bare_b64(png_bytes()), "prompt": "what is it?"}
        first = gw.client.post("/v1/qwen-vl", json=body, headers={"traceparent": INCOMING})
        assert first.status_code == 200, first.text
        again = gw.client.post("/v1/qwen-vl", json=body, headers={"traceparent": INCOMING})
        assert again.headers["x-cache"] == "HIT"
    finally:
        gw.client.close()
        server.stop()
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "POST /v1/qwen-vl"]
    assert len(roots) == 2
    for root in roots:
        assert format(root.context.trace_id, "032x") == CALLER_TRACE
        assert root.attributes["http.status_code"] == 200
    miss, hit = sorted(roots, key=lambda s: s.start_time)
    assert miss.attributes["cache"] == "MISS" and hit.attributes["cache"] == "HIT"

    def children(root):
        return {s.name: s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id}

    assert {"auth", "admit", "intake", "upstream"} <= set(children(miss))
    assert "upstream" not in children(hit)  # the cache answered: no GPU call in this trace
    upstream = children(miss)["upstream"]
    assert upstream.attributes["replica"] == "r0"
    # vLLM (the emulator) got a traceparent naming the gateway's upstream span
    log = httpx.get(f"{emulator.url}/emulator/requests", timeout=5).json()
    sent = [entry["traceparent"] for entry in log["data"] if entry.get("traceparent")]
    assert sent and sent[-1].split("-")[1] == CALLER_TRACE
    assert sent[-1].split("-")[2] == format(upstream.context.span_id, "016x")
