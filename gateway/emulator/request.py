"""Parse and validate a chat completion body the way vLLM's request model does (400 on failure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gateway.emulator.errors import EmulatorError, bad_request

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_NO_MEDIA = {"video": "video", "audio_url": "audio", "input_audio": "audio"}


@dataclass(slots=True)
class ImageRef:
    """One ``image_url`` part: its URL and the client-sent ``uuid`` vLLM would trust as a cache key."""

    url: str
    uuid: str | None = None


@dataclass(slots=True)
class ChatRequest:
    """The parts of a chat request the emulator acts on."""

    model: str
    texts: list[str] = field(default_factory=list)
    message_count: int = 0
    images: list[ImageRef] = field(default_factory=list)
    videos: list[str | None] = field(default_factory=list)  # video_url URLs (None: missing, 400 later)
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    request_id: str | None = None


def decode_body(raw: bytes) -> dict[str, Any]:
    """JSON object or a 400 (FastAPI turns a broken body into a validation error)."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise bad_request(f"JSON decode error: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("Input should be a valid dictionary or object to extract fields from")
    return body


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"{name}: Input should be a valid number", name)
    return float(value)


def _int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name}: Input should be a valid integer", name)
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{name}: Input should be a valid boolean", name)
    return value


def _sampling(body: dict[str, Any]) -> int | None:
    """Check sampling fields like SamplingParams does; return the effective max_tokens."""
    temperature = _number(body, "temperature")
    if temperature is not None and temperature < 0:
        raise bad_request(f"temperature must be non-negative, got {temperature}.", "temperature")
    top_p = _number(body, "top_p")
    if top_p is not None and not 0 < top_p <= 1:
        raise bad_request(f"top_p must be in (0, 1], got {top_p}.", "top_p")
    n = _int(body, "n")
    if n is not None and n != 1:
        raise bad_request("the vLLM emulator only supports n=1", "n")
    # vLLM: max_completion_tokens wins over the deprecated max_tokens.
    max_tokens = _int(body, "max_completion_tokens") or _int(body, "max_tokens")
    if max_tokens is not None and max_tokens < 1:
        raise bad_request(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens")
    for name in ("mm_processor_kwargs", "media_io_kwargs"):
        if body.get(name):
            raise bad_request(
                f"{name} is not allowed unless the server runs with --trust-request-mm-kwargs", name
            )
    return max_tokens


def _parts(content: Any, request: ChatRequest, where: str) -> None:
    if content is None or isinstance(content, str):
        request.texts.append(content or "")
        return
    if not isinstance(content, list):
        raise bad_request(f"{where}.content: Input should be a valid string or list", "messages")
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise bad_request(f"{where}.content.{index}: Input should be an object", "messages")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{where}.content.{index}.text: Field required", "messages")
            request.texts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str):
                raise bad_request(f"{where}.content.{index}.image_url.url: Field required", "messages")
            uuid = part.get("uuid")
            request.images.append(ImageRef(url, uuid if isinstance(uuid, str) else None))
        elif kind == "video_url":  # counted against --limit-mm-per-prompt before it is read
            video = part.get("video_url")
            url = video.get("url") if isinstance(video, dict) else None
            request.videos.append(url if isinstance(url, str) else None)
        elif kind in _NO_MEDIA:
            # Qwen3-VL has no audio; "video" is not an OpenAI part type.
            raise bad_request(f"At most 0 {_NO_MEDIA[kind]}(s) may be provided in one prompt.", "messages")
        else:
            raise bad_request(f"Unknown part type: {kind}", "messages")


def parse_chat(body: dict[str, Any], served_model: str, max_videos: int = 0) -> ChatRequest:
    """Validate ``body``; raise EmulatorError with vLLM's status and message."""
    model = body.get("model") or served_model  # vLLM falls back to the first served name
    if not isinstance(model, str):
        raise bad_request("model: Input should be a valid string", "model")
    if model != served_model:
        raise EmulatorError(404, f"The model `{model}` does not exist.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise bad_request("messages: Field required", "messages")
    if not messages:
        raise bad_request("messages: List should have at least 1 item after validation, not 0", "messages")
    request = ChatRequest(model=model, message_count=len(messages))
    request.max_tokens = _sampling(body)
    request.stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not request.stream:
            raise bad_request("Stream options can only be defined when `stream=True`.", "stream_options")
        if not isinstance(options, dict):
            raise bad_request("stream_options: Input should be an object", "stream_options")
        request.include_usage = bool(options.get("include_usage"))
    rid = body.get("request_id")
    request.request_id = rid if isinstance(rid, str) and rid else None
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise bad_request(f"{where}.role: Input should be one of {sorted(ROLES)}", "messages")
        _parts(message.get("content"), request, where)
    if len(request.videos) > max_videos:  # --limit-mm-per-prompt '{"video": N}'
        raise bad_request(f"At most {max_videos} video(s) may be provided in one prompt.", "messages")
    return request
