"""Running the gateway: uvicorn workers, the optional separate metrics port, multiprocess metrics."""

from __future__ import annotations

import os
import tempfile

import structlog
import uvicorn

from gateway.settings import Settings

log = structlog.get_logger("gateway")


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """With several workers, prometheus-client must share files; set that up before any import."""
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vlgw-metrics-")


def start_metrics_port(settings: Settings) -> None:
    """Serve ``/metrics`` on its own port (``GATEWAY_METRICS_PORT``) from a thread of this process."""
    if settings.metrics_port is None:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, addr=settings.host, registry=registry)


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
