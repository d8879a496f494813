"""Running the gateway: uvicorn workers, the optional separate metrics port, multiprocess metrics."""

from __future__ import annotations

import hmac
import os
import tempfile
from typing import Any

import structlog
import uvicorn

from gateway.settings import Settings

log = structlog.get_logger("gateway")


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """With several workers, prometheus-client must share files; set that up before any import."""
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vlgw-metrics-")


def start_metrics_port(settings: Settings) -> None:
    """Serve ``/metrics`` on its own port (``GATEWAY_METRICS_PORT``) from a thread of this process,
    behind ``GATEWAY_METRICS_TOKEN`` like the main port's ``/metrics``."""
    if settings.metrics_port is None:
        return
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    metrics_app = make_wsgi_app(registry)
    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if token is not None:
            presented = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(presented.encode(), token):
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"code": 40101, "message": "metrics need the operator\'s bearer token"}']
        return metrics_app(environ, start_response)

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # no access lines on stderr: scrapes are counted, not logged

    server = make_server(settings.host, settings.metrics_port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()


def serve(settings: Settings) -> None:
    """Run the gateway until SIGTERM/SIGINT; in-flight requests get the grace period to finish."""
    prepare_multiprocess_metrics(settings)
    start_metrics_port(settings)
    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
