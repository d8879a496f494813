"""The application factory: ``create_app(settings)`` builds everything; the lifespan opens clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from gateway import __version__
from gateway.api.app_route import qwen_vl
from gateway.api.auth import provide_principal
from gateway.api.context import RequestContext, RequestContextMiddleware
from gateway.api.cors import CORSMiddleware
from gateway.api.docs_route import docs_page
from gateway.api.envelopes import handle_exception
from gateway.api.openai_routes import chat_completions, list_models
from gateway.api.openapi import COMPONENTS
from gateway.api.ops_routes import healthz, readyz
from gateway.api.plugins import DevexPlugin, MetricsConfig, MetricsPlugin
from gateway.api.plugins.devex import count_usage
from gateway.ops.lifecycle import install_drain_on_sigterm
from gateway.ops.logging import configure_logging
from gateway.ops.tracing import Tracing
from gateway.serving.services import Services, open_services
from gateway.settings import Settings, load_settings


def known_routes(app: Litestar) -> frozenset[str]:
    """The paths the app serves (metrics label every other path ``other``), read from its routes."""
    return frozenset(route.path for route in app.routes if "{" not in route.path)


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def create_app(settings: Settings | None = None, *, tracing: Tracing | None = None) -> Litestar:
    """Build the gateway for ``settings`` (read from the environment when not given); ``tracing``
    replaces the one the settings describe (tests pass one with an in-memory exporter)."""
    settings = settings or load_settings()
    configure_logging(settings)
    tracing = tracing or Tracing.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings, tracing) as services:
            app.state.services = services
            install_drain_on_sigterm(services, settings.shutdown_drain_seconds)
            try:
                yield
            finally:
                tracing.shutdown()  # flush the spans still batched

    handlers = [qwen_vl, chat_completions, list_models, healthz, readyz, docs_page]
    metrics_config = MetricsConfig(token=settings.metrics_token, serve_route=settings.metrics_port is None)
    app = Litestar(
        route_handlers=handlers,
        plugins=[MetricsPlugin(metrics_config), DevexPlugin()],
        lifespan=[lifespan],
        dependencies={
            "services": Provide(_services, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers={Exception: handle_exception},
        request_max_body_size=None,  # read_body enforces GATEWAY_MAX_BODY_BYTES with the contract's 41301
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="vlgw",
            version=__version__,
            path="/schema",
            use_handler_docstrings=True,
            components=COMPONENTS,  # the bearer security scheme the /v1/* routes name
            # Only the JSON document: Litestar's UI plugins load from a CDN; /docs works offline.
            render_plugins=[JsonRenderPlugin()],
        ),
    )

    def request_finished(ctx: RequestContext) -> None:
        services: Services | None = getattr(app.state, "services", None)
        if services is not None:
            count_usage(services, ctx)

    handler = app.asgi_handler
    if settings.cors_origins:
        handler = CORSMiddleware(handler, settings.cors_origins)
    app.asgi_handler = RequestContextMiddleware(
        handler, known_routes(app), on_finish=request_finished, tracing=tracing
    )
    return app


def create_app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory`` (one call per worker process)."""
    return create_app(load_settings())
