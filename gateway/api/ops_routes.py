"""Operations routes: liveness and readiness (CONTRACT.md §5); ``/metrics`` is the metrics plugin's."""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromQuery

from gateway.api.openapi import answer, error_responses, operation
from gateway.api.schemas import AppError, Health, Readiness
from gateway.api.types import ServicesDep


@get(
    "/healthz",
    sync_to_thread=False,
    summary="Liveness",
    operation_id="healthz",
    operation_class=operation(),
    responses={200: answer(Health, "The process answers.")},
)
def healthz() -> Response[bytes]:
    """Liveness: the process answers; touches no dependency."""
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@get(
    "/readyz",
    summary="Readiness",
    operation_id="readyz",
    operation_class=operation(retry_after=False),
    responses={
        200: answer(
            Readiness, "Ready: a healthy upstream replica with a known model, and the store answers."
        ),
        503: answer(Readiness, "Not ready: not_ready names what is failing."),
        **error_responses(AppError, 400),
    },
)
async def readyz(services: ServicesDep, ignore: FromQuery[str | None] = None) -> Response[dict[str, object]]:
    """Readiness: a healthy upstream replica with a known model, and the store answers.

    ``?ignore=store`` leaves a check out of the verdict (still reported): an orchestrator that
    should keep gateways in rotation while Redis is down (they degrade, see docs) probes that way.
    """
    report = await services.readiness()
    ignored = set((ignore or "").split(","))
    failing = [name for name in report["not_ready"] if name not in ignored]
    return Response(content=report, status_code=503 if failing else 200)
