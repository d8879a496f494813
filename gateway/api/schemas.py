"""The bodies of every route (msgspec Structs): the app contract (CONTRACT.md §1), both error
envelopes, and the OpenAI wire format as far as ``/schema/openapi.json`` describes it (§3, §4).

The OpenAI request Structs document the body; the route itself reads it as a dict and passes
every field it has no policy on through to vLLM unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from gateway.api.openapi import ANSWER_NOTES
from gateway.upstream.wire import Usage


def _noted(field: str) -> msgspec.Meta:
    """The field's description in ``/schema/openapi.json`` (and so in generated clients)."""
    return msgspec.Meta(description=ANSWER_NOTES[field])


class QwenVLRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/qwen-vl`` (CONTRACT.md §1): ``image`` or ``video``, not both."""

    image: str | list[str] | None = None
    video: str | None = None
    prompt: str | None = None
    preset: str | None = None
    model: str | None = None  # a served model or alias (GATEWAY_MODEL_GROUPS); none: the first
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stream: bool = False
    precheck: bool | None = None

    def __post_init__(self) -> None:
        if self.image is None and self.video is None:
            raise ValueError("field `image` is required (or `video` for a clip)")
        if self.image is not None and self.video is not None:
            raise ValueError("field `video` is exclusive with `image`; send one of them")

    def images(self) -> list[str]:
        if self.image is None:
            return []
        return [self.image] if isinstance(self.image, str) else list(self.image)


class AppAnswer(msgspec.Struct):
    """Success body of ``POST /v1/qwen-vl``; ``code``, ``text`` and ``usage`` are the original three."""

    text: Annotated[str, _noted("text")]
    usage: Usage
    request_id: Annotated[str, _noted("request_id")]
    model: Annotated[str, _noted("model")]
    finish_reason: Annotated[str | None, _noted("finish_reason")]
    cached: Annotated[bool, _noted("cached")] = False
    code: Annotated[int, _noted("code")] = 0


class AppError(msgspec.Struct, omit_defaults=True):
    """Error body of the app routes (CONTRACT.md §1)."""

    code: Annotated[int, _noted("code")]
    message: Annotated[str, _noted("message")]
    request_id: Annotated[str, _noted("request_id")]
    retry_after: Annotated[int | None, _noted("retry_after")] = None
    hint: Annotated[str | None, _noted("hint")] = None
    reason: Annotated[str | None, _noted("reason")] = None
    param: Annotated[str | None, _noted("param")] = None


class OpenAIErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: int


class OpenAIError(msgspec.Struct):
    """Error envelope of the OpenAI-compatible routes, with our numeric code in ``code``."""

    error: OpenAIErrorDetail


# --- the app route's stream (CONTRACT.md §1): the JSON in each ``data:`` line -------------------


class AppStreamText(msgspec.Struct):
    """A piece of the answer as it is generated."""

    text: Annotated[str, _noted("text")]


class AppStreamEnd(msgspec.Struct):
    """The last event before ``[DONE]`` of a stream that succeeded."""

    usage: Usage
    finish_reason: Annotated[str | None, _noted("finish_reason")]
    request_id: Annotated[str, _noted("request_id")]
    code: Annotated[int, _noted("code")] = 0


# --- OpenAI chat completions (CONTRACT.md §3) ------------------------------------------------------


class ImageURL(msgspec.Struct, omit_defaults=True):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class VideoURL(msgspec.Struct):
    url: str


class TextPart(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class ImagePart(msgspec.Struct, tag_field="type", tag="image_url"):
    """An image: an https:// (or http://) URL or a data:image/...;base64 URI."""

    image_url: ImageURL


class VideoPart(msgspec.Struct, tag_field="type", tag="video_url"):
    """A short clip: a URL or a data:video/...;base64 URI (mp4, webm, mov)."""

    video_url: VideoURL


class ChatRequestMessage(msgspec.Struct, omit_defaults=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | ImagePart | VideoPart] | None = None
    name: str | None = None


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None


class ChatCompletionRequest(msgspec.Struct, omit_defaults=True):
    """Body of ``POST /v1/chat/completions``; fields not listed pass through to vLLM unchanged."""

    model: str
    messages: list[ChatRequestMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None


class AssistantMessage(msgspec.Struct):
    role: str
    content: str | None


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None


class ChatCompletion(msgspec.Struct):
    """OpenAI's ``chat.completion`` object (vLLM may add fields; clients ignore what they don't know)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


class ChunkDelta(msgspec.Struct):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct):
    """One ``data:`` event of a chat-completions stream (``chat.completion.chunk``); ``[DONE]`` ends it."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class Model(msgspec.Struct):
    """One entry of ``GET /v1/models``: the served model or one of its aliases."""

    id: str
    created: int
    owned_by: str = "vlgw"
    root: str | None = None
    max_model_len: int | None = None
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: str = "list"


# --- operations (CONTRACT.md §5) ------------------------------------------------------------------


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    """``GET /readyz``: each dependency and the verdict; ``not_ready`` names what is failing."""

    ready: bool
    not_ready: list[str]
    upstream: dict[str, Any]
    model: str | None
    store: dict[str, Any]
