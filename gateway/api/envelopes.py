"""The two error envelopes: the app contract's and OpenAI's. Handlers only raise; this renders."""

from __future__ import annotations

import msgspec
import structlog
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException

from gateway import errors
from gateway.api.context import context_of
from gateway.api.schemas import AppError, OpenAIError, OpenAIErrorDetail
from gateway.api.types import AnyRequest

log = structlog.get_logger("gateway.errors")

# The app contract's routes answer in its envelope; every other /v1 path (the OpenAI routes, and
# unknown ones an OpenAI SDK may call, like /v1/embeddings) in OpenAI's, so SDKs parse the error.
APP_ENVELOPE_PATHS = frozenset({"/v1/qwen-vl", "/v1/presets", "/v1/feedback", "/v1/usage"})


def wants_openai_envelope(path: str) -> bool:
    return path.startswith("/v1/") and path.rstrip("/") not in APP_ENVELOPE_PATHS


# OpenAI SDKs pick their exception class from the HTTP status; ``type`` mirrors OpenAI's names.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}


_HTTP_STATUS_ERRORS: dict[int, type[errors.GatewayError]] = {
    400: errors.InvalidBody,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


def _as_gateway_error(exc: Exception) -> errors.GatewayError:
    if isinstance(exc, errors.GatewayError):
        return exc
    if isinstance(exc, ValidationException):
        return errors.InvalidBody(str(exc.detail))
    if isinstance(exc, HTTPException):
        mapped = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if mapped is not None:
            return mapped(str(exc.detail))
        return errors.InvalidBody(str(exc.detail)) if exc.status_code < 500 else errors.InternalError()
    return errors.InternalError()


def render(request: AnyRequest, err: errors.GatewayError) -> Response[bytes]:
    """One error response in the envelope of the route that failed."""
    ctx = context_of(request.scope)
    ctx.code = err.code
    headers: dict[str, str] = {}
    retry_after = err.retry_after_seconds
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    headers.update({name.lower(): value for name, value in err.headers.items()})
    if wants_openai_envelope(request.scope["path"]):
        body = msgspec.json.encode(
            OpenAIError(
                error=OpenAIErrorDetail(
                    message=err.message,
                    type=_OPENAI_TYPES.get(err.status, "error"),
                    param=err.param,
                    code=err.code,
                )
            )
        )
    else:
        body = msgspec.json.encode(
            AppError(
                code=err.code,
                message=err.message,
                request_id=ctx.request_id,
                retry_after=retry_after,
                hint=err.hint,
                reason=err.reason,
                param=err.param,
            )
        )
    return Response(content=body, status_code=err.status, media_type="application/json", headers=headers)


def handle_exception(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """Litestar exception handler for every exception: contract envelope, never a stack trace."""
    err = _as_gateway_error(exc)
    if isinstance(err, errors.InternalError) and not isinstance(exc, errors.GatewayError):
        log.error("internal_error", exc_info=exc, path=request.scope["path"])
    return render(request, err)
