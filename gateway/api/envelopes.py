"""The two error envelopes: the app contract's and OpenAI's. Handlers only raise; this renders."""

from __future__ import annotations

import msgspec
import structlog
from litestar import Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.utils.path import normalize_path

from gateway import errors
from gateway.api.context import context_of
from gateway.api.schemas import AppError, OpenAIError, OpenAIErrorDetail
from gateway.api.types import AnyRequest

log = structlog.get_logger("gateway.errors")

# The app contract's routes answer in its envelope; every other /v1 path (the OpenAI routes, and
# unknown ones an OpenAI SDK may call, like /v1/embeddings) in OpenAI's, so SDKs parse the error.
APP_ENVELOPE_PATHS = frozenset({"/v1/qwen-vl", "/v1/presets", "/v1/feedback", "/v1/usage"})
MESSAGE_MAX_CHARS = 1024  # a message quoting client input (a 10 KB model name) is cut here


def wants_openai_envelope(path: str) -> bool:
    path = normalize_path(path)  # as Litestar routes it: "//v1/chat/completions/" is that route
    return path.startswith("/v1/") and path not in APP_ENVELOPE_PATHS


# OpenAI SDKs pick their exception class from the HTTP status; ``type`` mirrors OpenAI's names.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
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


def _as_gateway_error(exc: Exception, request: AnyRequest) -> errors.GatewayError:
    if isinstance(exc, errors.GatewayError):
        return exc
    if isinstance(exc, ValidationException):
        return _invalid_parameter(exc)
    if isinstance(exc, MethodNotAllowedException):
        allowed = (exc.headers or {}).get("allow", "")
        return errors.MethodNotAllowed(
            f"method {request.scope['method']} is not allowed here; allowed: {allowed}",
            headers={"allow": allowed} if allowed else None,
        )
    if isinstance(exc, NotFoundException):
        return errors.NotFound("no such route; the API reference is at /docs")
    if isinstance(exc, HTTPException):
        mapped = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if mapped is not None:
            return mapped(str(exc.detail))
        return errors.InvalidBody(str(exc.detail)) if exc.status_code < 500 else errors.InternalError()
    return errors.InternalError()


def _invalid_parameter(exc: ValidationException) -> errors.InvalidBody:
    """A query or path parameter Litestar refused, named (its message quotes no URL)."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = next((p for p in problems if isinstance(p, dict) and isinstance(p.get("key"), str)), None)
    if first is None:
        return errors.InvalidBody("invalid request parameters")
    key = str(first["key"])[:64]
    source = first.get("source") or "request"
    return errors.InvalidBody(
        f"invalid {source} parameter `{key}`: {first.get('message', 'invalid value')}", param=key
    )


def render(request: AnyRequest, err: errors.GatewayError) -> Response[bytes]:
    """One error response in the envelope of the route that failed."""
    ctx = context_of(request.scope)
    ctx.code = err.code
    headers: dict[str, str] = {}
    retry_after = err.retry_after_seconds
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    headers.update({name.lower(): value for name, value in err.headers.items()})
    message = err.message if len(err.message) <= MESSAGE_MAX_CHARS else err.message[:MESSAGE_MAX_CHARS] + "…"
    if wants_openai_envelope(request.scope["path"]):
        body = msgspec.json.encode(
            OpenAIError(
                error=OpenAIErrorDetail(
                    message=message,
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
                message=message,
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
    err = _as_gateway_error(exc, request)
    if isinstance(err, errors.InternalError) and not isinstance(exc, errors.GatewayError):
        log.error("internal_error", exc_info=exc, path=request.scope["path"])
    return render(request, err)
