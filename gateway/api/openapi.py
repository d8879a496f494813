"""OpenAPI helpers: request bodies from msgspec Structs, answers and errors, the bearer scheme.

Routes that read their body themselves (for the contract's 40001/41301 answers) declare no
``data`` parameter, so Litestar cannot see their body; ``operation(Struct)`` passed as a
handler's ``operation_class`` puts the Struct's schema (with the field notes and an example)
into ``/schema/openapi.json``. Answers and error envelopes are ``responses=`` entries
(``answer``, ``error_responses``), so Litestar lists their Structs under ``components``.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from gateway import errors

FIELD_NOTES: dict[str, str] = {
    "image": "One image or a list: an https:// (or http://) URL, a data:image/...;base64 URI or bare base64.",
    "video": "One short clip (mp4, webm, mov): a URL, a data:video/...;base64 URI or bare base64. "
    "Exclusive with image.",
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

CHAT_NOTES: dict[str, str] = {
    "model": "The served model or one of its aliases (GET /v1/models).",
    "messages": "OpenAI chat messages; content parts text, image_url and video_url.",
    "max_tokens": "Answer length cap; above the server's cap: 40007; unset: the server default.",
    "max_completion_tokens": "OpenAI's newer name for max_tokens; wins when both are sent.",
    "stream": "true answers as Server-Sent Events (chat.completion.chunk), then data: [DONE].",
    "stream_options": '{"include_usage": true} adds a last chunk with the usage.',
    "temperature": "Sampling temperature 0-2; unset: the model's own default.",
    "top_p": "Nucleus sampling (0, 1]; unset: the model's own default.",
    "n": "How many answers (choices) to generate.",
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
    "code": "0 on success; otherwise the error code (HTTP status × 100 + n).",
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


BEARER = "bearerAuth"
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]
"""A route's ``security=``: the caller's API key as ``Authorization: Bearer <key>``."""

COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key from `vlgw keys create` (`X-Api-Key: <key>` is accepted too).",
        )
    }
)
"""What ``OpenAPIConfig(components=...)`` adds; the schemas themselves come from the routes."""

_HEADERS = {
    "X-Request-Id": "The request id (also request_id in the body); a sane client-sent one is kept.",
    "Retry-After": "Seconds to wait before retrying (429 and 503 only).",
}


def _codes(status: int) -> str:
    rows = [(e.code, e.default_message) for e in errors.ALL_ERRORS if e.status == status]
    return "; ".join(f"{code}: {text}" for code, text in sorted(rows)) or HTTPStatus(status).phrase


def contract_statuses(*leave_out: int) -> tuple[int, ...]:
    """Every HTTP status the contract's error codes use (errors.ALL_ERRORS), but ``leave_out``."""
    return tuple(sorted({e.status for e in errors.ALL_ERRORS} - set(leave_out)))


def error_responses(envelope: type[Any], *statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` entries for each HTTP status a route may answer with ``envelope``."""
    return {
        status: ResponseSpec(data_container=envelope, description=_codes(status), generate_examples=False)
        for status in statuses
    }


def answer(struct: type[Any], description: str, media_type: str = "application/json") -> ResponseSpec:
    """The ``responses=`` entry of a route's 200 answer."""
    return ResponseSpec(
        data_container=struct, description=description, media_type=media_type, generate_examples=False
    )


def _event_stream(events: tuple[type[Any], ...], note: str) -> OpenAPIMediaType:
    """``text/event-stream``: its schema is that of the JSON in one ``data:`` line, as OpenAI's has it."""
    shapes = [struct_schema(event, ANSWER_NOTES) for event in events]
    schema: dict[str, Any] = shapes[0] if len(shapes) == 1 else {"anyOf": shapes}
    schema["description"] = note
    return OpenAPIMediaType(schema=to_openapi(schema))


def operation(
    body: type[Any] | None = None,
    *,
    notes: dict[str, str] = FIELD_NOTES,
    example: str | None = None,
    events: tuple[type[Any], ...] = (),
    events_note: str = "",
    retry_after: bool = True,
) -> type[Operation]:
    """An ``operation_class`` for a handler: its JSON request ``body`` (Litestar cannot see bodies
    a route reads itself), the ``text/event-stream`` alternative of its 200 (``events``), and the
    headers its answers carry (``Retry-After`` on 429 and 503 unless ``retry_after`` is False)."""
    waits = ("429", "503") if retry_after else ()
    request_schema = to_openapi(_for_generators(struct_schema(body, notes))) if body is not None else None
    value = EXAMPLES.get(example or "")
    stream = _event_stream(events, events_note) if events else None

    @dataclass
    class DocumentedOperation(Operation):
        def __post_init__(self) -> None:
            if request_schema is not None:
                examples: dict[str, Example | Reference] | None = (
                    {"example": Example(value=value)} if value else None
                )
                self.request_body = RequestBody(
                    content={"application/json": OpenAPIMediaType(schema=request_schema, examples=examples)},
                    required=True,
                )
            for status, response in (self.responses or {}).items():
                if not isinstance(response, OpenAPIResponse):
                    continue
                names = ["X-Request-Id", *(["Retry-After"] if status in waits else [])]
                response.headers = {
                    **(response.headers or {}),
                    **{
                        name: OpenAPIHeader(schema=_header_type(name), description=_HEADERS[name])
                        for name in names
                    },
                }
                if status == "200" and stream is not None and response.content is not None:
                    response.content["text/event-stream"] = stream

    DocumentedOperation.__name__ = f"{(body or Operation).__name__}Operation"
    return DocumentedOperation


def _for_generators(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body as client generators handle it best: untitled, so they name it after the
    operation (Python ``QwenVlBody``); optional fields without their ``null`` branch (leaving a
    field out means the same); a union of disjoint types as ``oneOf`` (Kotlin and Swift generate
    an empty class for ``anyOf [string, array, null]``, a usable wrapper or enum for ``oneOf``);
    string enums typed as strings."""

    def simplify(node: Any) -> Any:
        if isinstance(node, list):
            return [simplify(sub) for sub in node]
        if not isinstance(node, dict):
            return node
        node = {key: simplify(value) for key, value in node.items()}
        if "anyOf" in node:
            branches = [sub for sub in node.pop("anyOf") if sub != {"type": "null"}]
            node = {**branches[0], **node} if len(branches) == 1 else {"oneOf": branches, **node}
        if "enum" in node and "type" not in node and all(isinstance(v, str) for v in node["enum"]):
            node["type"] = "string"
        return node

    return {key: value for key, value in simplify(schema).items() if key != "title"}


def _header_type(name: str) -> Schema:
    return Schema(type=OpenAPIType.INTEGER if name == "Retry-After" else OpenAPIType.STRING)


def error_table() -> list[tuple[int, int, str, str]]:
    """(code, HTTP status, error name, meaning) for every contract error code, plus 0."""
    rows = [(0, 200, "ok", "success")]
    rows += [(e.code, e.status, e.__name__, e.default_message) for e in errors.ALL_ERRORS]
    return sorted(rows)
