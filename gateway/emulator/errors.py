"""vLLM's error envelope: ``{"error": {"message", "type", "param", "code"}}`` with code = HTTP status."""

from __future__ import annotations

from typing import Any

# The ``type`` vLLM (and the OpenAI SDK's exception names) pair with each status.
ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}


class EmulatorError(Exception):
    """An error vLLM would answer with; rendered by :func:`error_body`."""

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body vLLM sends for this error."""
        return error_body(self.status, self.message, self.param)


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """vLLM's ErrorResponse as a dict."""
    err_type = ERROR_TYPES.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    return {"error": {"message": message, "type": err_type, "param": param, "code": status}}


def bad_request(message: str, param: str | None = None) -> EmulatorError:
    """A 400 BadRequestError."""
    return EmulatorError(400, message, param=param)
