"""Optional OpenTelemetry spans for the gateway's phases, off by default (docs/tracing.md).

One server span per request, a child of the caller's W3C ``traceparent`` when it sends one, and a
child span per phase (``auth``, ``admit``, ``intake``, ``cache``, ``upstream``, ``stream``). The
``traceparent`` sent to vLLM names the current span, so vLLM's own spans (``--otlp-traces-endpoint``)
hang under the gateway's. Disabled, every call here is a shared no-op context manager: nothing
is imported from OpenTelemetry and nothing is allocated per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

_NOTHING = contextlib.nullcontext()


class Tracing:
    """Spans for one process; :meth:`disabled` when ``GATEWAY_TRACING_ENABLED`` is false."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: Tracer | None = provider.get_tracer("vlgw") if provider is not None else None

    @classmethod
    def disabled(cls) -> Tracing:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings, exporter: SpanExporter | None = None) -> Tracing:
        """OTLP/HTTP export in batches; ``exporter`` replaces it (tests pass an in-memory one)."""
        if not settings.tracing_enabled:
            return cls.disabled()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.tracing_service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.tracing_otlp_endpoint)))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def request(
        self, name: str, headers: Mapping[str, str], **attributes: Any
    ) -> contextlib.AbstractContextManager[Any]:
        """The request's server span, joined to the incoming ``traceparent`` (if any)."""
        if self._tracer is None:
            return _NOTHING
        return self._request(name, headers, attributes)

    @contextlib.contextmanager
    def _request(self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]) -> Iterator[Any]:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        assert self._tracer is not None
        parent = TraceContextTextMapPropagator().extract(carrier=dict(headers))
        with self._tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
            span.set_attributes(attributes)
            yield span

    def phase(self, name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
        """A child span of the current one for one phase of the request path."""
        if self._tracer is None:
            return _NOTHING
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def annotate(self, **attributes: Any) -> None:
        """Attributes on the current span (cache status, replica, codes ...)."""
        if self._tracer is None:
            return
        from opentelemetry import trace

        trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})

    def traceparent(self, incoming: str | None) -> str | None:
        """The ``traceparent`` to send upstream: the current span's, else the caller's as it came."""
        if self._tracer is None:
            return incoming
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        return carrier.get("traceparent", incoming)

    def shutdown(self) -> None:
        """Flush what is batched (called when the app stops)."""
        if self._provider is not None:
            self._provider.shutdown()
