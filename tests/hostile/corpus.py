"""Hostile request bodies, each with the contract's answer (CONTRACT.md §2).

Sources: the shapes of nst/JSONTestSuite's ``n_`` (must refuse) and ``i_`` (parser's choice)
files (https://github.com/nst/JSONTestSuite: invalid UTF-8, UTF-16 with a BOM, 100,000 opening
arrays, NaN, trailing garbage, lone surrogates), RFC 8259 §4 on duplicate names, the OWASP REST
Security cheat sheet's input validation list (types, ranges, sizes, unknown fields), and every
field of CONTRACT.md §1 and OpenAI's chat-completions body given a wrong type or range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.images import bare_b64, png_bytes

IMAGE = bare_b64(png_bytes())  # a valid 64x48 PNG: the body is what is hostile, not the image
MODEL = "qwen3-vl-8b"  # the emulator's served name
FEEDBACK_MAX_BODY = 16 * 1024  # gateway/api/plugins/devex.py


@dataclass(frozen=True)
class Case:
    """One body and the answer the contract gives it."""

    name: str
    body: bytes
    code: int
    param: str | None = None  # the field the message must name, when there is one

    @property
    def status(self) -> int:
        return self.code // 100


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _app(**fields: Any) -> bytes:
    return _json({"image": IMAGE, "prompt": "what is this?", **fields})


def _chat(**fields: Any) -> bytes:
    return _json({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields})


def _user(*parts: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


# Not JSON, or not a JSON object: 40001 on every route that takes a body.
MALFORMED: list[Case] = [
    Case("empty", b"", 40001),
    Case("null", b"null", 40001),
    Case("array", b"[]", 40001),
    Case("string", b'"hello"', 40001),
    Case("number", b"1", 40001),
    Case("true", b"true", 40001),
    Case("invalid_utf8_key", b'{"\xff\xfe":1}', 40001),
    Case("invalid_utf8_overlong", b'{"a":"\xc0\xaf"}', 40001),
    Case("cesu8_surrogate", b'{"a":"\xed\xa0\x80"}', 40001),
    Case("lone_surrogate_escape", rb'{"a":"\udc00"}', 40001),
    Case("utf16le_bom", '{"a":1}'.encode("utf-16"), 40001),
    Case("utf16be_no_bom", '{"a":1}'.encode("utf-16-be"), 40001),
    Case("utf8_bom", b'\xef\xbb\xbf{"a":1}', 40001),
    Case("nested_1000_arrays", b"[" * 1000 + b"]" * 1000, 40001),
    Case("opening_100000_arrays", b"[" * 100_000, 40001),
    Case("nested_1000_objects", b'{"a":' * 1000 + b"1" + b"}" * 1000, 40001),
    Case("nan", b'{"a":NaN}', 40001),
    Case("infinity", b'{"a":-Infinity}', 40001),
    Case("trailing_garbage", b'{"a":1} x', 40001),
    Case("two_documents", b"{}{}", 40001),
    Case("single_quotes", b"{'a':1}", 40001),
    Case("comment", b'{"a":1 /* hi */}', 40001),
    Case("unquoted_key", b"{a:1}", 40001),
    Case("truncated", b'{"a":', 40001),
    Case("nul_byte", b'{"a":1}\x00', 40001),
    Case("form_urlencoded", b"image=x&prompt=y", 40001),
    Case("multipart", b'--x\r\nContent-Disposition: form-data; name="image"\r\n\r\nx\r\n--x--\r\n', 40001),
]

# POST /v1/qwen-vl: every field of CONTRACT.md §1 with a wrong type or range.
APP: list[Case] = [
    Case("image_number", _app(image=1), 40001, "image"),
    Case("image_object", _app(image={"url": "x"}), 40001, "image"),
    Case("image_null", _app(image=None), 40001, "image"),
    Case("image_missing", _json({"prompt": "x"}), 40001, "image"),
    Case("image_empty_list", _app(image=[]), 40001, "image"),
    Case("image_list_of_numbers", _app(image=[1, 2]), 40001, "image[0]"),
    Case("image_list_of_100", _app(image=[IMAGE] * 100), 40005),
    Case("image_nested_lists", _app(image=[[[IMAGE]]]), 40001, "image[0]"),
    Case("prompt_number", _app(prompt=5), 40001, "prompt"),
    Case("prompt_1mb", _app(prompt="x" * 1_000_000), 40006),
    Case("max_tokens_zero", _app(max_tokens=0), 40007, "max_tokens"),
    Case("max_tokens_negative", _app(max_tokens=-1), 40007, "max_tokens"),
    Case("max_tokens_string", _app(max_tokens="10"), 40001, "max_tokens"),
    Case("max_tokens_float", _app(max_tokens=10.5), 40001, "max_tokens"),
    Case("max_tokens_1e9", _app(max_tokens=10**9), 40007, "max_tokens"),
    Case("max_tokens_2_pow_70", _app(max_tokens=2**70), 40007, "max_tokens"),
    Case("max_tokens_2_pow_64", _app(max_tokens=2**64), 40007, "max_tokens"),
    Case("max_tokens_1e400", _app()[:-1] + b', "max_tokens": 1e400}', 40001, "max_tokens"),
    Case("max_tokens_bool", _app(max_tokens=True), 40001, "max_tokens"),
    Case("temperature_negative", _app(temperature=-1), 40007, "temperature"),
    Case("temperature_3", _app(temperature=3), 40007, "temperature"),
    Case("temperature_hot", _app(temperature="hot"), 40001, "temperature"),
    Case("temperature_1e400", _app()[:-1] + b', "temperature": 1e400}', 40001, "temperature"),
    Case("temperature_nan", _app()[:-1] + b', "temperature": NaN}', 40001),
    Case("top_p_zero", _app(top_p=0), 40007, "top_p"),
    Case("top_p_list", _app(top_p=[1]), 40001, "top_p"),
    Case("stream_yes", _app(stream="yes"), 40001, "stream"),
    Case("stream_one", _app(stream=1), 40001, "stream"),
    Case("precheck_string", _app(precheck="no"), 40001, "precheck"),
    Case(
        "model_10kb", _app(model="m" * 10_000), 40401, "model"
    ),  # an unknown model: 404, as on OpenAI's route
    Case("preset_unknown", _app(preset="nope"), 40008, "preset"),
    Case("preset_number", _app(preset=1), 40001, "preset"),
    Case("unknown_field", _app(zzz=1), 40001, "zzz"),
    Case("proto_pollution", _app(__proto__={"admin": True}), 40001, "__proto__"),
    Case("video_and_image", _app(video=IMAGE), 40001, "video"),
]

# POST /v1/chat/completions: OpenAI's body, malformed the ways SDK users and attackers do.
CHAT: list[Case] = [
    Case("model_missing", _json({"messages": [{"role": "user", "content": "hi"}]}), 40001, "model"),
    Case("model_number", _chat(model=5), 40001, "model"),
    Case("model_10kb", _chat(model="m" * 10_000), 40401, "model"),
    Case("messages_missing", _json({"model": MODEL}), 40001, "messages"),
    Case("messages_string", _chat(messages="hi"), 40001, "messages"),
    Case("messages_empty", _chat(messages=[]), 40001, "messages"),
    Case("message_number", _chat(messages=[1]), 40001, "messages[0]"),
    Case("part_unknown_type", _chat(messages=_user({"type": "audio"})), 40001, "messages[0].content[0]"),
    Case("part_not_object", _chat(messages=_user("hi")), 40001, "messages[0].content[0]"),
    Case(
        "image_url_without_url",
        _chat(messages=_user({"type": "image_url", "image_url": {}})),
        40001,
        "messages[0].content[0].image_url",
    ),
    Case(
        "image_url_number",
        _chat(messages=_user({"type": "image_url", "image_url": {"url": 5}})),
        40001,
        "messages[0].content[0].image_url",
    ),
    Case("max_tokens_string", _chat(max_tokens="10"), 40001, "max_tokens"),
    Case("max_tokens_zero", _chat(max_tokens=0), 40007, "max_tokens"),
    Case("max_tokens_2_pow_70", _chat(max_tokens=2**70), 40007, "max_tokens"),
    Case("max_tokens_1e400", _chat()[:-1] + b', "max_tokens": 1e400}', 40001, "max_tokens"),
    Case("max_completion_tokens_negative", _chat(max_completion_tokens=-1), 40007, "max_completion_tokens"),
    Case("temperature_hot", _chat(temperature="hot"), 40001),
    Case("stream_yes", _chat(stream="yes"), 40001),
    Case("n_5", _chat(n=5), 40001),
    Case("n_string", _chat(n="5"), 40001),
    Case("deep_extra_field", _chat()[:-1] + b', "x": ' + b"[" * 65 + b"]" * 65 + b"}", 40001, "x"),
    Case("deep_extra_field_970", _chat()[:-1] + b', "x": ' + b"[" * 970 + b"]" * 970 + b"}", 40001, "x"),
    Case(
        "deep_in_message",
        _chat()[:-3] + b', "x": ' + b'{"a":' * 975 + b"1" + b"}" * 975 + b"}]}",
        40001,
    ),
]


# Every field given every JSON type (OWASP REST cheat sheet: type confusion): whatever the
# answer, it is not a 5xx. Fields: CONTRACT.md §1, §4 and OpenAI's chat-completions reference
# plus vLLM's extra fields (UPSTREAM.md).
WRONG_TYPES: list[Any] = [None, True, 0, -1, 2**63, 1e308, "x", "", [], {}, [[]], {"a": {}}, [None], ["x"]]
_CHAT_FIELDS = [
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stream",
    "stream_options", "stop", "seed", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice",
    "user", "presence_penalty", "frequency_penalty", "logit_bias", "parallel_tool_calls",
    "chat_template_kwargs", "mm_processor_kwargs", "priority", "cache_salt",
]  # fmt: skip
_MESSAGE_FIELDS = ["role", "content", "name", "tool_calls", "tool_call_id"]
_PART_FIELDS = ["type", "text", "image_url"]
_APP_FIELDS = [
    "image",
    "video",
    "prompt",
    "preset",
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "stream",
    "precheck",
]
_FEEDBACK_FIELDS = ["request_id", "verdict", "comment", "expected"]


def type_sweep() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, route, body) for every field above with every value of WRONG_TYPES."""
    chat: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    image_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + IMAGE}}
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for i, value in enumerate(WRONG_TYPES):
        tag = f"{type(value).__name__}{i}"
        for name in _CHAT_FIELDS:
            cases.append((f"chat.{name}={tag}", "/v1/chat/completions", {**chat, name: value}))
        for name in _MESSAGE_FIELDS:
            message = {"role": "user", "content": "hi", name: value}
            cases.append(
                (f"chat.message.{name}={tag}", "/v1/chat/completions", {**chat, "messages": [message]})
            )
        for name in _PART_FIELDS:
            part = {**image_part, name: value}
            body = {**chat, "messages": [{"role": "user", "content": [part]}]}
            cases.append((f"chat.part.{name}={tag}", "/v1/chat/completions", body))
        url_part = {"type": "image_url", "image_url": {"url": value}}
        body = {**chat, "messages": [{"role": "user", "content": [url_part]}]}
        cases.append((f"chat.part.image_url.url={tag}", "/v1/chat/completions", body))
        for name in _APP_FIELDS:
            cases.append((f"app.{name}={tag}", "/v1/qwen-vl", {"image": IMAGE, "prompt": "x", name: value}))
        for name in _FEEDBACK_FIELDS:
            feedback = {"request_id": "no-such-request", "verdict": "bad", name: value}
            cases.append((f"feedback.{name}={tag}", "/v1/feedback", feedback))
    return cases
