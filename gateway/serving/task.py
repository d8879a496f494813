"""Translating the app contract into one vLLM chat request, and vLLM's answer back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway import errors
from gateway.api.schemas import QwenVLRequest
from gateway.presets import Preset
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class Sampling:
    """The sampling parameters sent upstream; ``None`` leaves vLLM's (the model's) default."""

    max_tokens: int
    temperature: float | None
    top_p: float | None

    def as_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.temperature is not None:
            fields["temperature"] = self.temperature
        if self.top_p is not None:
            fields["top_p"] = self.top_p
        return fields


def resolve_sampling(
    req: QwenVLRequest,
    settings: Settings,
    *,
    default_max_tokens: int | None = None,
    max_tokens_cap: int | None = None,
    default_temperature: float | None = None,
    default_top_p: float | None = None,
) -> Sampling:
    """Apply defaults (server, then preset) and refuse out-of-range values with 40007."""
    cap = min(max_tokens_cap or settings.max_tokens_cap, settings.max_tokens_cap)
    max_tokens = (
        req.max_tokens if req.max_tokens is not None else (default_max_tokens or settings.default_max_tokens)
    )
    if max_tokens < 1:
        raise errors.ParameterOutOfRange("max_tokens must be at least 1", param="max_tokens")
    if max_tokens > cap:
        raise errors.ParameterOutOfRange(
            f"max_tokens {max_tokens} is above this server's cap of {cap}", param="max_tokens"
        )
    temperature = req.temperature if req.temperature is not None else default_temperature
    if temperature is None:
        temperature = settings.default_temperature
    if temperature is not None and not 0 <= temperature <= 2:
        raise errors.ParameterOutOfRange("temperature must be between 0 and 2", param="temperature")
    top_p = req.top_p if req.top_p is not None else default_top_p
    if top_p is not None and not 0 < top_p <= 1:
        raise errors.ParameterOutOfRange("top_p must be in (0, 1]", param="top_p")
    return Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p)


def build_chat_payload(
    *,
    model: str,
    prompt: str,
    image_uris: Sequence[str | msgspec.Raw],
    sampling: Sampling,
    system: str | None = None,
    stream: bool = False,
    video_uri: str | msgspec.Raw | None = None,
) -> dict[str, Any]:
    """One chat-completions request: images (or the clip) first, then the question (Qwen's own
    examples' order). ``video_uri`` is the intake's ``data:video/jpeg;base64,<f1>,<f2>,...``."""
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": uri}} for uri in image_uris]
    if video_uri is not None:
        content.append({"type": "video_url", "video_url": {"url": video_uri}})
    content.append({"type": "text", "text": prompt})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": content})
    payload: dict[str, Any] = {"model": model, "messages": messages, **sampling.as_fields()}
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


@dataclass(frozen=True, slots=True)
class Task:
    """What an app request asks the model, once its preset (if any) is applied."""

    prompt: str
    sampling: Sampling
    preset: Preset | None = None

    @property
    def system(self) -> str | None:
        return self.preset.system if self.preset else None

    @property
    def pixel_budget(self) -> int | None:
        return self.preset.pixel_budget if self.preset else None

    @property
    def cache_tag(self) -> str | None:
        """The preset's name and version: a new version never serves an old version's answers."""
        return self.preset.cache_tag if self.preset else None

    @property
    def cache_opt_in(self) -> bool:
        return bool(self.preset and self.preset.cacheable)


def resolve_task(req: QwenVLRequest, settings: Settings, preset: Preset | None) -> Task:
    """The prompt and sampling of an app request: the preset's template and defaults, then the client's."""
    if preset is None:
        if not req.prompt:
            raise errors.InvalidBody("field `prompt` is required (a non-empty string)", param="prompt")
        return Task(req.prompt, resolve_sampling(req, settings))
    sampling = resolve_sampling(
        req,
        settings,
        default_max_tokens=preset.max_tokens,
        max_tokens_cap=preset.max_tokens_cap,
        default_temperature=preset.temperature,
        default_top_p=preset.top_p,
    )
    return Task(preset.render(req.prompt), sampling, preset)
