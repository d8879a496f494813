"""Preparing an OpenAI chat-completions body for vLLM: model names, image parts, token caps.

Every field the gateway has no policy on passes through unchanged. Image parts go through the
same intake as the app route (fetched safely, normalised, sent as ``data:`` URIs) and any
client ``uuid`` on a part is dropped: vLLM would trust it as the image's cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gateway import errors
from gateway.settings import Settings

ALLOWED_PART_TYPES = frozenset({"text", "image_url"})


@dataclass
class ChatRequest:
    """A validated chat body and what the gateway needs to know about it."""

    body: dict[str, Any]
    image_parts: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int = 0
    text_chars: int = 0

    def last_user_text(self) -> str | None:
        """The text of the last user message (what feedback records as the prompt)."""
        for message in reversed(self.body["messages"]):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text") or None
        return None

    def image_refs(self) -> list[str]:
        return [part["image_url"]["url"] for part in self.image_parts]


def _image_url(part: dict[str, Any], where: str) -> dict[str, Any]:
    value = part.get("image_url")
    if isinstance(value, str):  # vLLM accepts the bare-string form too; normalise it
        value = {"url": value}
        part["image_url"] = value
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise errors.InvalidBody(f"{where}.image_url.url must be a string", param=f"{where}.image_url")
    return value


def parse_chat_request(
    body: dict[str, Any], *, settings: Settings, served_model: str, aliases: Sequence[str]
) -> ChatRequest:
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
    request = ChatRequest(body=body)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise errors.InvalidBody(f"messages[{i}] must be an object", param=f"messages[{i}]")
        content = message.get("content")
        if isinstance(content, str):
            request.text_chars += len(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                where = f"messages[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in ALLOWED_PART_TYPES:
                    raise errors.InvalidBody(
                        f"{where}: content part type {kind!r} is not supported", param=where
                    )
                if kind == "text":
                    request.text_chars += len(str(part.get("text", "")))
                else:
                    _image_url(part, where)
                    part.pop("uuid", None)
                    request.image_parts.append(part)
    _apply_token_cap(request, settings)
    request.stream = bool(body.get("stream", False))
    if request.stream:
        options = body.get("stream_options")
        request.include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        # Always ask for usage upstream, so streams are accounted; relay_openai hides it if unasked.
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return request


def _apply_token_cap(request: ChatRequest, settings: Settings) -> None:
    body = request.body
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
        request.max_tokens = value
        return
    # Unbounded answers tie up a GPU slot; the server default applies (docs/api.md says so).
    body["max_tokens"] = request.max_tokens = settings.default_max_tokens


def attach_images(request: ChatRequest, uris: Sequence[str | msgspec.Raw]) -> dict[str, Any]:
    """The body with each image part's URL replaced by the ``data:`` URI the intake produced."""
    for part, uri in zip(request.image_parts, uris, strict=True):
        part["image_url"]["url"] = uri
    return request.body
