"""``GET /v1/presets``, ``POST /v1/feedback``, ``GET /v1/usage`` (CONTRACT.md §4). Orchestrate only."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get, post
from litestar.params import Parameter

from gateway.api.body import decode_json, read_body
from gateway.api.openapi import body_operation
from gateway.api.types import AnyRequest, PrincipalDep, ServicesDep
from gateway.devex import DevEx, FeedbackBody, UsageReport
from gateway.presets import PresetInfo
from gateway.serving.services import Services

ROUTE_PRESETS = "/v1/presets"
ROUTE_FEEDBACK = "/v1/feedback"
ROUTE_USAGE = "/v1/usage"
FEEDBACK_MAX_BODY = 16 * 1024


class PresetList(msgspec.Struct):
    presets: list[PresetInfo]
    code: int = 0


class FeedbackAccepted(msgspec.Struct):
    feedback_id: str
    request_id: str
    code: int = 0


def devex_of(services: Services) -> DevEx:
    return services.devex


@get(ROUTE_PRESETS, summary="Presets this key may use", operation_id="listPresets")
async def list_presets(services: ServicesDep, principal: PrincipalDep) -> PresetList:
    """The presets this key may name in ``preset``, with their descriptions and defaults."""
    presets = devex_of(services).presets.all()
    return PresetList(presets=[p.info() for p in presets if principal.allows_preset(p.name)])


@post(
    ROUTE_FEEDBACK,
    status_code=200,
    summary="Judge an answer (the app's 识别有误? button)",
    operation_id="feedback",
    operation_class=body_operation(FeedbackBody, "feedback"),
)
async def feedback(request: AnyRequest, services: ServicesDep, principal: PrincipalDep) -> FeedbackAccepted:
    """Store ``good``/``bad`` with the judged request's prompt, preset, answer and image hashes.

    Only the key that made the request may judge it; any other request id answers 40401.
    """
    body = decode_json(await read_body(request, FEEDBACK_MAX_BODY), FeedbackBody)
    entry = await devex_of(services).submit_feedback(principal.name, body)
    return FeedbackAccepted(feedback_id=entry.id, request_id=body.request_id)


@get(ROUTE_USAGE, summary="This key's usage by day", operation_id="usage")
async def usage(
    services: ServicesDep,
    principal: PrincipalDep,
    days: Annotated[int, Parameter(description="How many UTC days, ending today (1-90)")] = 7,
) -> UsageReport:
    """Requests, prompt and completion tokens, cache hits and errors by code, per UTC day."""
    return await devex_of(services).usage_report(principal.name, days)


DEVEX_ROUTES = [list_presets, feedback, usage]
