"""The app contract's bodies (msgspec Structs): CONTRACT.md §1, and both error envelopes."""

from __future__ import annotations

import msgspec

from gateway.upstream.wire import Usage


class QwenVLRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/qwen-vl`` (CONTRACT.md §1)."""

    image: str | list[str]
    prompt: str | None = None
    preset: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stream: bool = False
    precheck: bool | None = None

    def images(self) -> list[str]:
        return [self.image] if isinstance(self.image, str) else list(self.image)


class AppAnswer(msgspec.Struct):
    """Success body of ``POST /v1/qwen-vl``; ``code``, ``text`` and ``usage`` are the original three."""

    text: str
    usage: Usage
    request_id: str
    model: str
    finish_reason: str | None
    cached: bool = False
    code: int = 0


class AppError(msgspec.Struct, omit_defaults=True):
    """Error body of the app routes (CONTRACT.md §1)."""

    code: int
    message: str
    request_id: str
    retry_after: int | None = None
    hint: str | None = None
    reason: str | None = None
    param: str | None = None


class OpenAIErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: int


class OpenAIError(msgspec.Struct):
    """Error envelope of the OpenAI-compatible routes, with our numeric code in ``code``."""

    error: OpenAIErrorDetail
