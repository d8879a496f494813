"""Operations routes: liveness, readiness and metrics (CONTRACT.md §5)."""

from __future__ import annotations

import hmac

from litestar import Response, get
from litestar.params import FromQuery

from gateway import errors
from gateway.api.types import AnyRequest, ServicesDep
from gateway.ops.metrics_export import render_metrics


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> Response[bytes]:
    """Liveness: the process answers; touches no dependency."""
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@get("/readyz", include_in_schema=False)
async def readyz(services: ServicesDep, ignore: FromQuery[str | None] = None) -> Response[dict[str, object]]:
    """Readiness: a healthy upstream replica with a known model, and the store answers.

    ``?ignore=store`` leaves a check out of the verdict (still reported): an orchestrator that
    should keep gateways in rotation while Redis is down (they degrade, see docs) probes that way.
    """
    report = await services.readiness()
    ignored = set((ignore or "").split(","))
    failing = [name for name in report["not_ready"] if name not in ignored]
    return Response(content=report, status_code=503 if failing else 200)


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics_route(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    """Prometheus text format; behind a bearer token when ``GATEWAY_METRICS_TOKEN`` is set."""
    token = services.settings.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise errors.Unauthorized("metrics need the operator's bearer token")
    body, content_type = render_metrics()
    return Response(content=body, media_type=content_type)
