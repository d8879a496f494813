"""One request, whatever route it came from: the immutable :class:`Ask` the pipeline serves.

The route adapters (``gateway/api/``) decode their contract into an ``Ask``; from here on no
code knows which envelope the caller speaks, except through the two question forms: a
:class:`Prompt` (the app contract: a prompt, maybe a preset) or :class:`Chat` (OpenAI messages).
Both answer the same questions: how much text, what goes in the cache key, what vLLM is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.auth import Principal
from gateway.cache import KeyMaterial, RequestCacheControl
from gateway.presets import Preset
from gateway.serving.task import Sampling, build_chat_payload

_NOT_IN_KEY = ("stream", "stream_options", "model", "user")
_NO_DIRECTIVES = RequestCacheControl()


@dataclass(frozen=True, slots=True)
class Prompt:
    """The app contract's question: a prompt (the preset's template applied) and a system prompt."""

    text: str
    system: str | None
    client_prompt: str | None  # what the caller typed (feedback records it)

    @property
    def text_bytes(self) -> int:
        return len(self.text.encode()) + len((self.system or "").encode())

    @property
    def message_count(self) -> int:
        return 2 if self.system else 1

    @property
    def feedback_prompt(self) -> str | None:
        return self.client_prompt

    def key_messages(self, image_hashes: Sequence[str], video_hash: str | None = None) -> Any:
        return {"prompt": self.text}

    def payload(
        self,
        model: str,
        image_uris: Sequence[str | msgspec.Raw],
        ask: Ask,
        video_uri: str | msgspec.Raw | None = None,
    ) -> dict[str, Any]:
        return build_chat_payload(
            model=model,
            prompt=self.text,
            system=self.system,
            sampling=ask.sampling,
            image_uris=image_uris,
            stream=ask.stream,
            video_uri=video_uri,
        )


@dataclass(frozen=True, slots=True)
class Chat:
    """An OpenAI chat body, validated: every field the gateway has no policy on passes through."""

    body: dict[str, Any]  # with the served model name and the token cap applied
    image_parts: tuple[dict[str, Any], ...]  # the body's image_url parts, in order
    text_bytes: int
    last_user_text: str | None

    @property
    def message_count(self) -> int:
        return len(self.body["messages"])

    @property
    def feedback_prompt(self) -> str | None:
        return self.last_user_text

    @property
    def video_url(self) -> str | None:
        """The URL of the body's one ``video_url`` part (the adapter allows one), if any."""
        for message in self.body["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else ():
                if isinstance(part, dict) and part.get("type") == "video_url":
                    url: str = part["video_url"]["url"]
                    return url
        return None

    def key_messages(self, image_hashes: Sequence[str], video_hash: str | None = None) -> Any:
        """The body minus what doesn't change the answer; image and video parts stand as content hashes."""
        digests = iter(image_hashes)

        def part_key(part: Any) -> Any:
            if isinstance(part, dict) and part.get("type") == "image_url":
                return {"type": "image_url", "sha256": next(digests)}
            if isinstance(part, dict) and part.get("type") == "video_url":
                return {"type": "video_url", "sha256": video_hash}
            return part

        def message_key(message: dict[str, Any]) -> dict[str, Any]:
            content = message.get("content")
            if isinstance(content, list):
                return {**message, "content": [part_key(part) for part in content]}
            return message

        key = {name: value for name, value in self.body.items() if name not in _NOT_IN_KEY}
        key["messages"] = [message_key(message) for message in self.body["messages"]]
        return key

    def payload(
        self,
        model: str,
        image_uris: Sequence[str | msgspec.Raw],
        ask: Ask,
        video_uri: str | msgspec.Raw | None = None,
    ) -> dict[str, Any]:
        """A copy of the body with each image URL replaced by the ``data:`` URI the intake produced,
        and the video URL by the clip's ``data:video/jpeg;base64,<f1>,<f2>,...`` frames."""
        uris = iter(image_uris)

        def part_sent(part: Any) -> Any:
            if isinstance(part, dict) and part.get("type") == "image_url":
                return {**part, "image_url": {**part["image_url"], "url": next(uris)}}
            if isinstance(part, dict) and part.get("type") == "video_url":
                return {**part, "video_url": {**part["video_url"], "url": video_uri}}
            return part

        def message_sent(message: dict[str, Any]) -> dict[str, Any]:
            content = message.get("content")
            if isinstance(content, list):
                return {**message, "content": [part_sent(part) for part in content]}
            return message

        body = {**self.body, "messages": [message_sent(m) for m in self.body["messages"]]}
        if ask.stream:  # always ask for usage upstream, so streams are accounted
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return body


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An ``Idempotency-Key`` and the fingerprint of the body it was sent with."""

    key: str
    body_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """Everything the pipeline needs to answer one request; built once by a route adapter."""

    principal: Principal
    route: str
    request_id: str
    started: float  # perf_counter at arrival (time to first token is measured from here)
    question: Prompt | Chat
    images: tuple[str, ...]  # image references as sent: URLs, data: URIs or bare base64
    video: str | None = None  # the clip as sent: a URL, a data:video/... URI or bare base64
    model: str | None = None  # the model the client named (OpenAI route); None: the served one
    preset: Preset | None = None
    sampling: Sampling
    n: int = 1
    pixel_budget: int | None = None  # per image; None: the server's
    precheck: bool | None = None
    stream: bool = False
    cache_control: RequestCacheControl = _NO_DIRECTIVES
    any_temperature: bool = False  # this route's policy: cache whatever the temperature
    idempotency: Idempotency | None = None
    trace: str | None = None

    def key_material(self, image_hashes: list[str], model: str, video_hash: str | None = None) -> KeyMaterial:
        """What changes the answer: image and clip content, question, model, preset and sampling values.

        The clip stands as the hash of its sampled frames, so the same clip sent as a URL or as
        base64 is one entry."""
        return KeyMaterial(
            image_hashes=[*image_hashes, f"video:{video_hash}"] if video_hash else image_hashes,
            messages=self.question.key_messages(image_hashes, video_hash),
            model=model,
            preset=self.preset.cache_tag if self.preset else None,
            sampling=self.sampling.as_fields() if isinstance(self.question, Prompt) else {},
        )
