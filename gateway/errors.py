"""The gateway's exception tree. Every error knows its contract code and HTTP status.

Codes are ``HTTP status * 100 + n`` (CONTRACT.md §2). Foreign exceptions (httpx, redis,
Pillow, msgspec) are converted into these once, at the edge of the package that meets them;
route handlers only raise, and one exception handler per envelope renders them.

    GatewayError                      500 50001 (base; also "internal error")
                                      attributes: message, param, retry_after, hint, reason, headers;
                                      class attributes for upstream failures: retryable, outcome
    ├── BadRequest                    400
    │   ├── InvalidBody               40001  body not JSON / schema (names the field)
    │   ├── ImageUndecodable          40002
    │   ├── ImageURLRefused           40003  scheme, host, address, port, credentials
    │   ├── ImageFetchFailed          40004  status, timeout, content type
    │   ├── TooManyImages             40005
    │   ├── ContextOverflow           40006
    │   ├── ParameterOutOfRange       40007
    │   ├── UnknownPreset             40008
    │   ├── ImageQualityTooLow        40009  carries a ``hint``
    │   └── VideoUndecodable          40010  not a decodable clip of an allowed container/codec
    ├── Unauthorized                  401 40101
    ├── Forbidden                     403 40301
    ├── NotFound                      404 40401  unknown route; feedback on an unknown/foreign request id
    ├── MethodNotAllowed              405 40501
    ├── PayloadTooLarge               413 41301
    │   └── VideoTooLarge             41302  video over its duration, frame, pixel or work limit
    ├── IdempotencyConflict           422 42201  same Idempotency-Key, different body
    ├── TooManyRequests               429 (carry ``retry_after``)
    │   ├── RequestRateLimited        42901
    │   ├── TokenRateLimited          42902
    │   ├── ConcurrencyLimited        42903
    │   └── UnknownKeysLimited        42904  too many unknown API keys from one client address
    ├── InternalError                 500 50001
    ├── UpstreamError                 502 50201  upstream error or unreadable body
    │   ├── UpstreamDisconnected             connection dropped before an answer   retryable
    │   ├── UpstreamStreamBroken             broke before [DONE]   retryable before the first token
    │   ├── UpstreamRejectedCredentials      401 from vLLM (configuration, not the replica's fault)
    │   └── UpstreamModelMissing             404 from vLLM (configuration, not the replica's fault)
    ├── ServiceUnavailable            503 50301  no healthy upstream / shedding (``retry_after``)
    │   ├── UpstreamUnreachable              connect refused / connect timeout      retryable
    │   ├── UpstreamOverloaded               vLLM's 503/429 with Retry-After        retryable
    │   └── UpstreamPoolExhausted            no free connection in our own pool
    └── UpstreamTimeout               504 50401
        ├── FirstTokenTimeout                no first token within the deadline
        └── ChunkGapTimeout                  silent too long mid-stream

``retryable`` says whether another replica may be tried (before anything reached the client);
``outcome`` is what the failure says about the replica that produced it (fed to its health
state: ``connect_error``, ``timeout``, ``server_error``, ``overloaded``, or ``ok`` when the
replica answered properly and the request or the configuration was at fault; ``None`` when the
replica is not involved).
"""

from __future__ import annotations

from typing import ClassVar, Literal

Outcome = Literal["ok", "connect_error", "timeout", "server_error", "overloaded"]
"""What a failed attempt says about the replica that served it (see ``Replica.report``)."""


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[int] = 50001
    default_message: ClassVar[str] = "internal error"
    retryable: ClassVar[bool] = False
    outcome: ClassVar[Outcome | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.param = param
        self.retry_after = retry_after
        self.hint = hint  # 40009: what the user can do (rendered as ``hint``)
        self.reason = reason  # a short machine-readable why (``too_dark``, ``scan_count``, ...)
        self.headers: dict[str, str] = headers or {}  # extra response headers (RateLimit-*)
        super().__init__(self.message)

    @property
    def retry_after_seconds(self) -> int | None:
        """``retry_after`` rounded up to whole seconds (what headers carry), at least 1."""
        if self.retry_after is None:
            return None
        return max(1, int(-(-self.retry_after // 1)))


class BadRequest(GatewayError):
    status = 400
    code = 40001
    default_message = "bad request"


class InvalidBody(BadRequest):
    code = 40001
    default_message = "request body is not valid JSON or does not match the schema"


class ImageUndecodable(BadRequest):
    code = 40002
    default_message = "image is not a decodable image of an allowed format"


class ImageURLRefused(BadRequest):
    code = 40003
    default_message = "image URL refused"


class ImageFetchFailed(BadRequest):
    code = 40004
    default_message = "image URL could not be fetched"


class TooManyImages(BadRequest):
    code = 40005
    default_message = "too many images in one request"


class ContextOverflow(BadRequest):
    code = 40006
    default_message = "prompt plus images exceed the model's context"


class ParameterOutOfRange(BadRequest):
    code = 40007
    default_message = "parameter out of the allowed range"


class UnknownPreset(BadRequest):
    code = 40008
    default_message = "unknown preset"


class ImageQualityTooLow(BadRequest):
    code = 40009
    default_message = "image quality too low to answer"

    def __init__(self, message: str | None = None, *, hint: str, reason: str) -> None:
        super().__init__(message, hint=hint, reason=reason)


class VideoUndecodable(BadRequest):
    code = 40010
    default_message = "video is not a decodable clip of an allowed container/codec"


class Unauthorized(GatewayError):
    status = 401
    code = 40101
    default_message = "missing or invalid API key"


class Forbidden(GatewayError):
    status = 403
    code = 40301
    default_message = "this key is not allowed this model, route or preset"


class NotFound(GatewayError):
    status = 404
    code = 40401
    default_message = "not found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = 40501
    default_message = "method not allowed on this route"


class PayloadTooLarge(GatewayError):
    status = 413
    code = 41301
    default_message = "request body, decoded image or pixel count over the limit"


class VideoTooLarge(PayloadTooLarge):
    code = 41302
    default_message = "video over its duration, frame or pixel limit"


class IdempotencyConflict(GatewayError):
    """422, as the IETF Idempotency-Key draft answers a key reused with a different payload."""

    status = 422
    code = 42201
    default_message = "Idempotency-Key was already used with a different request body"


class TooManyRequests(GatewayError):
    status = 429
    code = 42901
    default_message = "rate limit exceeded"


class RequestRateLimited(TooManyRequests):
    code = 42901
    default_message = "request rate limit exceeded"


class TokenRateLimited(TooManyRequests):
    code = 42902
    default_message = "token rate limit exceeded"


class ConcurrencyLimited(TooManyRequests):
    code = 42903
    default_message = "concurrency limit exceeded"


class UnknownKeysLimited(TooManyRequests):
    code = 42904
    default_message = "too many unknown API keys from this address"


class InternalError(GatewayError):
    status = 500
    code = 50001
    default_message = "internal error"


class UpstreamError(GatewayError):
    status = 502
    code = 50201
    default_message = "upstream answered with an error or an unreadable body"
    outcome: ClassVar[Outcome | None] = "server_error"


class UpstreamDisconnected(UpstreamError):
    default_message = "upstream broke the connection before answering"
    retryable = True
    outcome: ClassVar[Outcome | None] = "connect_error"


class UpstreamStreamBroken(UpstreamError):
    """The stream broke or ended before ``[DONE]``; retried only while no token reached the client."""

    default_message = "upstream broke the stream"
    retryable = True
    outcome: ClassVar[Outcome | None] = "connect_error"


class UpstreamRejectedCredentials(UpstreamError):
    default_message = "upstream refused the gateway's credentials"
    outcome: ClassVar[Outcome | None] = "ok"  # a configuration error, not a sick replica: not ejected for it


class UpstreamModelMissing(UpstreamError):
    default_message = "upstream does not serve the configured model"
    outcome: ClassVar[Outcome | None] = "ok"


class ServiceUnavailable(GatewayError):
    status = 503
    code = 50301
    default_message = "no healthy upstream"


class UpstreamUnreachable(ServiceUnavailable):
    default_message = "upstream is unreachable"
    retryable = True
    outcome: ClassVar[Outcome | None] = "connect_error"


class UpstreamOverloaded(ServiceUnavailable):
    default_message = "upstream is overloaded"
    retryable = True
    outcome: ClassVar[Outcome | None] = "overloaded"


class UpstreamPoolExhausted(ServiceUnavailable):
    default_message = "no free upstream connection"


class UpstreamTimeout(GatewayError):
    status = 504
    code = 50401
    default_message = "upstream did not answer within the deadline"
    outcome: ClassVar[Outcome | None] = "timeout"


class FirstTokenTimeout(UpstreamTimeout):
    default_message = "upstream sent no first token within the deadline"


class ChunkGapTimeout(UpstreamTimeout):
    default_message = "upstream went silent mid-stream"


ALL_ERRORS: tuple[type[GatewayError], ...] = (
    InvalidBody,
    ImageUndecodable,
    ImageURLRefused,
    ImageFetchFailed,
    TooManyImages,
    ContextOverflow,
    ParameterOutOfRange,
    UnknownPreset,
    ImageQualityTooLow,
    VideoUndecodable,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    VideoTooLarge,
    IdempotencyConflict,
    RequestRateLimited,
    TokenRateLimited,
    ConcurrencyLimited,
    UnknownKeysLimited,
    InternalError,
    UpstreamError,
    ServiceUnavailable,
    UpstreamTimeout,
)
"""Every concrete error, for docs and the OpenAPI schema."""
