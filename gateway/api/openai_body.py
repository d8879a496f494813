"""The OpenAI body adapter: a chat-completions body validated into a :class:`Chat` question.

Model names are mapped, image parts collected, token caps applied.

Every field the gateway has no policy on passes through unchanged. Image parts go through the
same intake as the app route (fetched safely, normalised, sent as ``data:`` URIs), as does one
``video_url`` part (sampled into JPEG frames, docs/video.md); any client ``uuid`` on a part is
dropped: vLLM would trust it as the media's cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import errors
from gateway.serving.ask import Chat
from gateway.serving.task import Sampling
from gateway.settings import Settings

ALLOWED_PART_TYPES = frozenset({"text", "image_url", "video_url"})
MAX_VIDEOS = 1  # vLLM is started with --limit-mm-per-prompt video 1 (docs/video.md)


def _media_url(part: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    """``part[kind]`` (``image_url`` or ``video_url``) as ``{"url": str, ...}``; 40001 otherwise."""
    value = part.get(kind)
    if isinstance(value, str):  # vLLM accepts the bare-string form too; normalise it
        value = {"url": value}
        part[kind] = value
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise errors.InvalidBody(f"{where}.{kind}.url must be a string", param=f"{where}.{kind}")
    return value


def parse_chat(
    body: dict[str, Any], *, settings: Settings, served_model: str, aliases: Sequence[str]
) -> Chat:
    """Validate the parts the gateway acts on; map the model name; collect image parts."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.InvalidBody("field `model` is required", param="model")
    if model != served_model and model not in aliases:
        raise errors.NotFound(f"The model `{model}` does not exist. Use `{served_model}`.", param="model")
    body["model"] = served_model
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.InvalidBody("field `messages` must be a non-empty list", param="messages")
    image_parts: list[dict[str, Any]] = []
    videos = 0
    text_bytes = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise errors.InvalidBody(f"messages[{i}] must be an object", param=f"messages[{i}]")
        if not isinstance(message.get("role"), str):
            raise errors.InvalidBody(f"messages[{i}].role must be a string", param=f"messages[{i}].role")
        content = message.get("content")
        if isinstance(content, str):
            text_bytes += len(content.encode())
        elif isinstance(content, list):
            for j, part in enumerate(content):
                where = f"messages[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if not isinstance(kind, str) or kind not in ALLOWED_PART_TYPES:
                    raise errors.InvalidBody(
                        f"{where}: content part type {kind!r} is not supported", param=where
                    )
                if kind == "text":
                    text_bytes += len(str(part.get("text", "")).encode())
                    continue
                _media_url(part, kind, where)
                part.pop("uuid", None)
                if kind == "image_url":
                    image_parts.append(part)
                    continue
                videos += 1
                if videos > MAX_VIDEOS:
                    raise errors.TooManyImages(
                        f"{where}: at most {MAX_VIDEOS} video_url part per request", param=where
                    )
    _apply_token_cap(body, settings)
    return Chat(
        body=body,
        image_parts=tuple(image_parts),
        text_bytes=text_bytes,
        last_user_text=_last_user_text(messages),
    )


def _last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The text of the last user message (what feedback records as the prompt)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text") or None
    return None


def max_tokens_of(body: dict[str, Any]) -> int:
    """The token cap in force (``max_completion_tokens`` first, as OpenAI defines it)."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) else 0


def sampling_of(body: dict[str, Any]) -> Sampling:
    """The values the cache policy reads; every sampling field stays in the body (and the key)."""
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    number = (int, float)
    return Sampling(
        max_tokens=max_tokens_of(body),
        temperature=float(temperature) if isinstance(temperature, number) else None,
        top_p=float(top_p) if isinstance(top_p, number) else None,
    )


def include_usage(body: dict[str, Any]) -> bool:
    """Whether the client asked for the usage chunk at the end of a stream."""
    options = body.get("stream_options")
    return bool(isinstance(options, dict) and options.get("include_usage"))


def _apply_token_cap(body: dict[str, Any], settings: Settings) -> None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidBody(f"`{name}` must be an integer", param=name)
        if value < 1 or value > settings.max_tokens_cap:
            raise errors.ParameterOutOfRange(
                f"`{name}` must be between 1 and this server's cap of {settings.max_tokens_cap}", param=name
            )
        return
    # Unbounded answers tie up a GPU slot; the server default applies (docs/api.md says so).
    body["max_tokens"] = settings.default_max_tokens
