"""Developer experience as a plugin: ``GET /v1/presets``, ``POST /v1/feedback``, ``GET /v1/usage``
(CONTRACT.md §4), and the per-key usage counter every answered request feeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.config.app import AppConfig
from litestar.params import Parameter
from litestar.plugins import InitPluginProtocol

from gateway import metrics
from gateway.api.body import decode_json, read_body
from gateway.api.context import RequestContext
from gateway.api.openapi import SECURITY, answer, error_responses, operation
from gateway.api.schemas import AppError
from gateway.api.types import AnyRequest, PrincipalDep, ServicesDep
from gateway.constants import ROUTE_APP, ROUTE_CHAT
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


class DevexController(Controller):
    """The developer-experience routes (they resolve the principal before reading any body)."""

    @get(
        ROUTE_PRESETS,
        summary="Presets this key may use",
        operation_id="listPresets",
        operation_class=operation(),
        security=SECURITY,
        responses={
            200: answer(PresetList, "The presets this key may name."),
            **error_responses(AppError, 401, 429, 503),
        },
    )
    async def list_presets(self, services: ServicesDep, principal: PrincipalDep) -> PresetList:
        """The presets this key may name in ``preset``, with their descriptions and defaults."""
        presets = devex_of(services).presets.all()
        return PresetList(presets=[p.info() for p in presets if principal.allows_preset(p.name)])

    @post(
        ROUTE_FEEDBACK,
        status_code=200,
        summary="Judge an answer (the app's 识别有误? button)",
        operation_id="feedback",
        operation_class=operation(FeedbackBody, example="feedback"),
        security=SECURITY,
        responses={
            200: answer(FeedbackAccepted, "Stored."),
            **error_responses(AppError, 400, 401, 404, 413, 429, 503),
        },
    )
    async def feedback(
        self, request: AnyRequest, services: ServicesDep, principal: PrincipalDep
    ) -> FeedbackAccepted:
        """Store ``good``/``bad`` with the judged request's prompt, preset, answer and image hashes.

        Only the key that made the request may judge it; any other request id answers 40401.
        """
        body = decode_json(await read_body(request, FEEDBACK_MAX_BODY), FeedbackBody)
        entry = await devex_of(services).submit_feedback(principal.name, body)
        return FeedbackAccepted(feedback_id=entry.id, request_id=body.request_id)

    @get(
        ROUTE_USAGE,
        summary="This key's usage by day",
        operation_id="usage",
        operation_class=operation(),
        security=SECURITY,
        responses={
            200: answer(UsageReport, "One row per UTC day, oldest first."),
            **error_responses(AppError, 400, 401, 429, 503),
        },
    )
    async def usage(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        days: Annotated[int, Parameter(description="How many UTC days, ending today (1-90)")] = 7,
    ) -> UsageReport:
        """Requests, prompt and completion tokens, cache hits and errors by code, per UTC day."""
        return await devex_of(services).usage_report(principal.name, days)


@dataclass(frozen=True, slots=True)
class DevexConfig:
    """Nothing to configure yet beyond the settings the DevEx service reads; kept for the shape."""

    enabled: bool = True


class DevexPlugin(InitPluginProtocol):
    """Installs :class:`DevexController`."""

    def __init__(self, config: DevexConfig | None = None) -> None:
        self.config = config or DevexConfig()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.config.enabled:
            app_config.route_handlers.append(DevexController)
        return app_config


USAGE_ROUTES = frozenset({ROUTE_APP, ROUTE_CHAT})


def count_usage(services: Services, ctx: RequestContext) -> None:
    """Count one finished request in its key's daily usage (and the token metrics)."""
    if ctx.key_name is None or ctx.route not in USAGE_ROUTES:
        return
    outcome = ctx.outcome
    usage = outcome.usage if outcome is not None else None
    tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
    if tokens is not None:
        metrics.TOKENS.labels(direction="prompt").inc(tokens[0])
        metrics.TOKENS.labels(direction="completion").inc(tokens[1])
    cached = outcome is not None and outcome.cache == "HIT"
    services.devex.record_usage(ctx.key_name, code=ctx.code, usage=tokens, cached=cached)
