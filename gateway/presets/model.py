"""One preset: a named, versioned task (system prompt, user template, sampling, pixel budget)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from gateway import errors

PROMPT_PLACEHOLDER = "{prompt}"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME = re.compile(NAME_PATTERN)

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class Preset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A server-side prompt preset, as written in the presets file (docs/presets.md)."""

    name: Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    description: Text
    system: Text | None = None
    template: Text = PROMPT_PLACEHOLDER  # the user message; the client's prompt replaces {prompt}
    prompt_required: bool = True
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None  # default when the client sends none
    max_tokens_cap: Annotated[int, msgspec.Meta(ge=1)] | None = None  # above it: 40007
    pixel_budget: Annotated[int, msgspec.Meta(ge=4096)] | None = None  # per image; None: the server's
    cacheable: bool = False  # operator opt-in: cache answers even at temperature > 0
    precheck: bool = False  # image quality pre-check unless the request says otherwise
    output: Literal["text", "json"] = "text"

    def __post_init__(self) -> None:
        if self.prompt_required and PROMPT_PLACEHOLDER not in self.template:
            raise ValueError("`template` must contain {prompt} when `prompt_required` is true")
        cap = self.max_tokens_cap
        if self.max_tokens is not None and cap is not None and self.max_tokens > cap:
            raise ValueError("`max_tokens` is above `max_tokens_cap`")

    @property
    def cache_tag(self) -> str:
        """``name@version``: part of the cache key, so editing a preset (and its version) misses."""
        return f"{self.name}@{self.version}"

    def render(self, prompt: str | None) -> str:
        """The user message for ``prompt``; 40001 naming ``prompt`` when one is required and missing."""
        prompt = (prompt or "").strip()
        if not prompt and self.prompt_required:
            raise errors.InvalidBody(f"preset {self.name!r} needs a `prompt`", param="prompt")
        # str.replace, not str.format: templates may hold literal braces (JSON examples).
        return self.template.replace(PROMPT_PLACEHOLDER, prompt).strip()

    def info(self) -> PresetInfo:
        """What ``GET /v1/presets`` shows (not the prompts: those are the operator's)."""
        return PresetInfo(
            name=self.name,
            version=self.version,
            description=self.description.strip(),
            prompt_required=self.prompt_required,
            output=self.output,
            max_tokens=self.max_tokens,
            max_tokens_cap=self.max_tokens_cap,
            precheck=self.precheck,
        )


class PresetInfo(msgspec.Struct, kw_only=True):
    """One preset as ``GET /v1/presets`` lists it."""

    name: str
    version: str
    description: str
    prompt_required: bool
    output: Literal["text", "json"]
    max_tokens: int | None
    max_tokens_cap: int | None
    precheck: bool
