"""Tracing: the request span joins the caller's trace, phases nest under it, the traceparent sent
upstream names the current span; disabled, nothing happens. Spans are read from the SDK's
in-memory exporter (the OTLP exporter is the only part replaced)."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.ops.tracing import Tracing
from gateway.settings import Settings

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
INCOMING = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = Settings(_env_file=None, tracing_enabled=True)  # type: ignore[call-arg]
    return Tracing.from_settings(settings, exporter=exporter), exporter


def test_phases_nest_under_the_request_span_which_joins_the_callers_trace() -> None:
    tracer, exporter = tracing()
    with tracer.request("POST /v1/qwen-vl", {"traceparent": INCOMING}, route="/v1/qwen-vl"):
        with tracer.phase("intake", images=1):
            pass
        with tracer.phase("upstream"):
            sent = tracer.traceparent(INCOMING)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    root, intake, upstream = spans["POST /v1/qwen-vl"], spans["intake"], spans["upstream"]
    assert format(root.context.trace_id, "032x") == CALLER_TRACE
    assert format(root.parent.span_id, "016x") == CALLER_SPAN
    assert intake.parent.span_id == root.context.span_id and upstream.parent.span_id == root.context.span_id
    assert intake.attributes["images"] == 1 and root.attributes["route"] == "/v1/qwen-vl"
    assert sent is not None and sent.split("-")[1] == CALLER_TRACE
    assert sent.split("-")[2] == format(upstream.context.span_id, "016x")  # vLLM's spans go under it


def test_a_request_without_traceparent_starts_a_trace() -> None:
    tracer, exporter = tracing()
    with tracer.request("GET /v1/models", {}):
        pass
    [span] = exporter.get_finished_spans()
    assert span.parent is None


def test_disabled_is_a_no_op() -> None:
    tracer = Tracing.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert not tracer.enabled
    with tracer.request("x", {"traceparent": INCOMING}), tracer.phase("y"):
        tracer.annotate(cache="HIT")
        assert tracer.traceparent(INCOMING) == INCOMING  # passed on untouched
