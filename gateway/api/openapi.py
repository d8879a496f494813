"""OpenAPI helpers: request bodies from msgspec Structs, field notes, examples, the error table.

Routes that read their body themselves (for the contract's 40001/41301 answers) declare no
``data`` parameter, so Litestar cannot see their body; ``body_operation(Struct)`` passed as a
handler's ``operation_class`` puts the Struct's schema (with the field notes and an example)
into ``/schema/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from gateway import errors

FIELD_NOTES: dict[str, str] = {
    "image": "One image or a list: an https:// (or http://) URL, a data:image/...;base64 URI or bare base64.",
    "prompt": "The question about the image; optional when the preset supplies one.",
    "preset": "Name of a server-side preset (GET /v1/presets): system prompt, sampling, pixel budget.",
    "max_tokens": "Answer length cap; above the server's (or preset's) cap is refused with 40007.",
    "temperature": "Sampling temperature 0-2; default from the preset or the server.",
    "top_p": "Nucleus sampling (0, 1]; default upstream's.",
    "stream": "true answers as Server-Sent Events: {text} deltas, a final {code: 0, usage}, then [DONE].",
    "precheck": "Check image quality (dark, bright, blurred, tiny) before any GPU work; 40009 with a hint.",
    "request_id": "The request_id (X-Request-Id) of the answer being judged; only the key that asked may.",
    "verdict": '"good" or "bad".',
    "comment": "Free text from the user (at most 2000 characters).",
    "expected": "What the answer should have been (at most 4000 characters); used for fine-tuning.",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "qwenVl": {"image": "https://example.com/photo.jpg", "preset": "identify_object"},
    "feedback": {
        "request_id": "4f1c2a9e0b7d4c55",
        "verdict": "bad",
        "comment": "识别有误",
        "expected": "吊兰",
    },
    "chatCompletions": {
        "model": "qwen3-vl",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/photo.jpg"}},
                    {"type": "text", "text": "这是什么?"},
                ],
            }
        ],
        "max_tokens": 200,
    },
}

_KEYS = {
    "anyOf": "any_of",
    "oneOf": "one_of",
    "allOf": "all_of",
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "additionalProperties": "additional_properties",
}
_PLAIN = {"required", "enum", "minimum", "maximum", "default", "description", "title", "pattern", "format"}


ANSWER_NOTES: dict[str, str] = {
    "text": "The answer.",
    "usage": "Token counts: prompt_tokens, completion_tokens, total_tokens.",
    "request_id": "Also in the X-Request-Id header; quote it in POST /v1/feedback.",
    "model": "The model that answered.",
    "finish_reason": '"stop", or "length" when max_tokens cut the answer.',
    "cached": "true when the answer came from the response cache.",
    "code": "0 on success; an error code (table below) otherwise.",
    "message": "What went wrong, for developers (not for end users).",
    "retry_after": "Seconds to wait before retrying (429, 503); also the Retry-After header.",
    "hint": "40009: what the user should do, in Chinese and English; show it as is.",
    "reason": "40009: too_dark, too_bright, blurry or too_small.",
    "param": "The request field at fault, when there is one.",
    "key": "The key's name.",
    "days": "One row per UTC day, oldest first; days without traffic are zeros.",
}


def struct_schema(struct: type[Any], notes: dict[str, str] = FIELD_NOTES) -> dict[str, Any]:
    """The JSON schema of a msgspec Struct, references inlined, ``notes`` as field descriptions."""
    (top,), components = msgspec.json.schema_components([struct], ref_template="{name}")

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(components[node["$ref"]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    schema: dict[str, Any] = inline(top)
    for name, prop in schema.get("properties", {}).items():
        if name in notes:
            prop.setdefault("description", notes[name])
    return schema


def to_openapi(node: dict[str, Any]) -> Schema:
    """A JSON-schema dict as Litestar's OpenAPI ``Schema`` object."""
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kwargs["type"] = OpenAPIType(value)
        elif key == "properties":
            kwargs["properties"] = {name: to_openapi(sub) for name, sub in value.items()}
        elif key == "items":
            kwargs["items"] = to_openapi(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            kwargs[_KEYS[key]] = [to_openapi(sub) for sub in value]
        elif key == "additionalProperties":
            kwargs["additional_properties"] = value if isinstance(value, bool) else to_openapi(value)
        elif key in _KEYS:
            kwargs[_KEYS[key]] = value
        elif key in _PLAIN:
            kwargs[key] = value
    return Schema(**kwargs)


def body_operation(struct: type[Any], example_key: str | None = None) -> type[Operation]:
    """An ``operation_class`` for a handler: its JSON request body is ``struct``."""
    schema = to_openapi(struct_schema(struct))
    example = EXAMPLES.get(example_key or "")

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            examples: dict[str, Example | Reference] | None = (
                {"example": Example(value=example)} if example else None
            )
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema, examples=examples)},
                required=True,
            )

    BodyOperation.__name__ = f"{struct.__name__}Operation"
    return BodyOperation


def error_table() -> list[tuple[int, int, str, str]]:
    """(code, HTTP status, error name, meaning) for every contract error code, plus 0."""
    rows = [(0, 200, "ok", "success")]
    rows += [(e.code, e.status, e.__name__, e.default_message) for e in errors.ALL_ERRORS]
    return sorted(rows)
