"""``GET /docs``: the API reference page, rendered once per process from the OpenAPI schema."""

from __future__ import annotations

from litestar import Response, get

from gateway.api.docs_page import render_docs_page
from gateway.api.openapi import answer, operation
from gateway.api.types import AnyRequest


@get(
    "/docs",
    sync_to_thread=False,
    summary="This API reference as a web page",
    operation_id="docsPage",
    operation_class=operation(),
    responses={200: answer(str, "A self-contained HTML page.", "text/html")},
)
def docs_page(request: AnyRequest) -> Response[str]:
    """A self-contained HTML page (no CDN): operations, fields, examples, error codes."""
    state = request.app.state
    page: str | None = state.get("docs_page_html")
    if page is None:
        page = render_docs_page(request.app.openapi_schema.to_schema())
        state["docs_page_html"] = page
    return Response(content=page, media_type="text/html; charset=utf-8")
