"""Operations routes: liveness and readiness (CONTRACT.md §5); ``/metrics`` is the metrics plugin's."""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromQuery

from gateway.api.types import ServicesDep


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
