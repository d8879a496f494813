"""Metrics as a plugin: ``GET /metrics`` (Prometheus text), behind the operator's bearer token.

The request metrics themselves are counted by the request-context middleware
(``gateway/api/context.py``), which wraps the whole app rather than sitting inside the router,
so that 404s and 405s are counted too; the metric catalogue is ``gateway/metrics.py``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from litestar import Controller, Response, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from pydantic import SecretStr

from gateway import errors
from gateway.api.openapi import SECURITY, answer, error_responses, operation
from gateway.api.schemas import AppError
from gateway.api.types import AnyRequest
from gateway.ops.metrics_export import render_metrics


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``serve_route``: False when ``GATEWAY_METRICS_PORT`` serves the metrics on a port of their own."""

    token: SecretStr | None = None
    serve_route: bool = True
    path: str = "/metrics"


class MetricsController(Controller):
    """``GET /metrics``."""

    path = "/metrics"
    token: SecretStr | None = None

    @get(
        sync_to_thread=False,
        summary="Prometheus metrics",
        operation_id="metrics",
        operation_class=operation(),
        security=[{}, *SECURITY],
        responses={
            200: answer(str, "Prometheus text format; metric names start with gateway_.", "text/plain"),
            **error_responses(AppError, 401),
        },
    )
    def metrics(self, request: AnyRequest) -> Response[bytes]:
        """Prometheus text format; behind a bearer token when ``GATEWAY_METRICS_TOKEN`` is set."""
        if self.token is not None:
            presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(presented.encode(), self.token.get_secret_value().encode()):
                raise errors.Unauthorized("metrics need the operator's bearer token")
        body, content_type = render_metrics()
        return Response(content=body, media_type=content_type)


class MetricsPlugin(InitPluginProtocol):
    """Installs :class:`MetricsController` as configured."""

    def __init__(self, config: MetricsConfig) -> None:
        self.config = config

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.config.serve_route:
            controller = type(
                "MetricsController",
                (MetricsController,),
                {"path": self.config.path, "token": self.config.token},
            )
            app_config.route_handlers.append(controller)
        return app_config
