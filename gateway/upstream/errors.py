"""Converting aiohttp/httpx exceptions and vLLM error answers into gateway errors, once, here."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

import aiohttp
import httpx
import msgspec
import structlog

from gateway import errors
from gateway.upstream.wire import UpstreamErrorBody

log = structlog.get_logger("gateway.upstream")

_IMAGE_ERROR = re.compile(r"image|decode|identify|PIL|media", re.IGNORECASE)


@contextlib.contextmanager
def map_transport_errors(replica: str) -> Iterator[None]:
    """Re-raise aiohttp (data plane) and httpx (control plane) transport errors as typed gateway errors."""
    try:
        yield
    except (
        aiohttp.ClientConnectorError,
        aiohttp.ConnectionTimeoutError,
        httpx.ConnectError,
        httpx.ConnectTimeout,
    ) as exc:
        raise errors.UpstreamUnreachable(f"upstream {replica} is unreachable", retry_after=1) from exc
    except httpx.PoolTimeout as exc:
        raise errors.UpstreamPoolExhausted(retry_after=1) from exc
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise errors.UpstreamTimeout() from exc
    except (aiohttp.ClientError, httpx.HTTPError) as exc:
        # Disconnected, broken payload, protocol error: the replica died or spoke nonsense.
        raise errors.UpstreamDisconnected(f"upstream {replica} broke the connection") from exc


# vLLM's context-overflow wordings across versions (UPSTREAM.md, "Context"). Checked before
# anything else: the last one mentions images, yet it is the context, never a bad image.
_CONTEXT_OVERFLOW = re.compile(
    r"maximum context length"
    r"|exceeds model'?s maximum context length"
    r"|max_tokens must be at least 1, got 0"
    r"|longer than the maximum model length"
    r"|context length",
    re.IGNORECASE,
)


def error_from_status(
    status: int, body: bytes, headers: Mapping[str, str], replica: str
) -> errors.GatewayError:
    """The gateway error for a non-200 upstream answer (UPSTREAM.md lists vLLM's)."""
    message = _message(body)
    if status == 400:
        if _CONTEXT_OVERFLOW.search(message):
            return errors.ContextOverflow(message)
        if "may be provided in one prompt" in message.lower():
            return errors.TooManyImages(message)
        if _IMAGE_ERROR.search(message):
            return errors.ImageUndecodable(message)
        return errors.InvalidBody(f"upstream rejected the request: {message}")
    if status == 422:
        return errors.ImageFetchFailed(message)
    if status in (429, 503):
        return errors.UpstreamOverloaded(retry_after=_retry_after(headers))
    if status == 401:
        log.error("upstream_refused_credentials", replica=replica, hint="check GATEWAY_UPSTREAM_API_KEY")
        return errors.UpstreamRejectedCredentials()
    if status == 404:
        log.error("upstream_model_not_found", replica=replica, message=message)
        return errors.UpstreamModelMissing()
    return errors.UpstreamError(f"upstream answered {status}")


def _message(body: bytes) -> str:
    try:
        parsed = msgspec.json.decode(body, type=UpstreamErrorBody)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed.error, str):
        return parsed.error
    return str(parsed.error.get("message", ""))[:2000]


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("retry-after")
    try:
        return max(1.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0
