"""The content-addressed cache key: sha256 over a canonical JSON document of everything that
changes the answer.

The document is msgspec JSON with sorted keys, so field boundaries are explicit (strings are
quoted and escaped): no two different requests can meet by concatenation (``"ab" + "c"`` and
``"a" + "bc"`` encode differently). Numbers are normalised (``0.0`` and ``0`` are the same
temperature) and ``stop: "x"`` equals ``stop: ["x"]``, as the upstream treats them alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

KEY_VERSION = 1  # bump when the recipe changes, so old entries are simply never found again

GLOBAL_SCOPE = "*"  # cannot collide with an owner name: owners are passed through as-is, never "*"

SAMPLING_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "response_format",
    "logit_bias",
    "n",
)
"""The sampling parameters the routes should pass (their effective values, after preset and
server defaults). Any other entry passed in ``sampling`` is part of the key too."""


class KeyMaterial(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that changes the answer to one request."""

    image_hashes: Sequence[str]  # normalised image content hashes, in request order
    messages: Any  # the prompt text, or the chat messages with images replaced by their hashes
    model: str  # the served model
    preset: str | None = None
    preset_version: str | None = None
    sampling: Mapping[str, Any] = msgspec.field(default_factory=dict)


def scope_for(owner: str, scope: Literal["key", "global"]) -> str:
    """The key scope: the owner (an API key's name or id) by default, one shared scope when global."""
    if scope == "global":
        return GLOBAL_SCOPE
    if owner == GLOBAL_SCOPE:
        raise ValueError("owner '*' is reserved for the global cache scope")
    return owner


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, msgspec.Struct):
        return _canonical(msgspec.to_builtins(value))
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_canonical(v) for v in value]
    return msgspec.to_builtins(value)


def _sampling(sampling: Mapping[str, Any]) -> dict[str, Any]:
    out = _canonical(sampling)
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    if out.get("stop") == []:
        del out["stop"]
    return dict(out)


def canonical_document(material: KeyMaterial, *, scope: str) -> bytes:
    """The exact bytes hashed into the key (exposed for tests and debugging)."""
    doc = {
        "v": KEY_VERSION,
        "scope": scope,
        "model": material.model,
        "preset": material.preset,
        "preset_version": material.preset_version,
        "images": list(material.image_hashes),
        "messages": _canonical(material.messages),
        "sampling": _sampling(material.sampling),
    }
    return msgspec.json.encode(doc, order="sorted")


def cache_key(material: KeyMaterial, *, scope: str) -> str:
    """The cache key (64 hex characters) of one request within one scope."""
    return hashlib.sha256(canonical_document(material, scope=scope)).hexdigest()


def fingerprint(value: Any) -> str:
    """A stable sha256 of a request body (raw bytes, or parsed JSON / a Struct, canonicalised)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return hashlib.sha256(value).hexdigest()
    return hashlib.sha256(msgspec.json.encode(_canonical(value), order="sorted")).hexdigest()
