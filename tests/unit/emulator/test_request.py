from __future__ import annotations

from typing import Any

import pytest

from gateway.emulator.errors import EmulatorError
from gateway.emulator.request import decode_body, parse_chat

MODEL = "m"


def parse(**body: Any) -> Any:
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_chat(body, MODEL)


def test_minimal_request_defaults() -> None:
    request = parse()
    assert request.model == MODEL  # vLLM falls back to the served model
    assert request.stream is False
    assert request.max_tokens is None
    assert request.texts == ["hi"]


def test_unknown_fields_are_ignored_like_vllm() -> None:
    assert parse(foo=1, seed=3, logit_bias={}).model == MODEL


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert parse(max_tokens=5, max_completion_tokens=7).max_tokens == 7


def test_image_parts_and_uuid_are_collected() -> None:
    content = [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": "data:x"}, "uuid": "u1"},
    ]
    request = parse(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]
    )
    assert request.texts == ["be brief", "what"]
    assert [(ref.url, ref.uuid) for ref in request.images] == [("data:x", "u1")]
    assert request.message_count == 2


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "other"}, 404, "The model `other` does not exist."),
        ({"messages": []}, 400, "at least 1 item"),
        ({"messages": "hi"}, 400, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "video_url"}]}]}, 400, "At most 0 video(s)"),
        ({"messages": [{"role": "user", "content": [{"type": "nope"}]}]}, 400, "Unknown part type: nope"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "image_url.url"),
        ({"temperature": -1}, 400, "temperature"),
        ({"temperature": "hot"}, 400, "temperature"),
        ({"top_p": 0}, 400, "top_p"),
        ({"max_tokens": 0}, 400, "max_tokens must be at least 1"),
        ({"max_tokens": True}, 400, "max_tokens"),
        ({"n": 2}, 400, "n=1"),
        ({"stream_options": {"include_usage": True}}, 400, "Stream options can only be defined"),
        ({"mm_processor_kwargs": {"max_pixels": 1}}, 400, "--trust-request-mm-kwargs"),
    ],
)
def test_invalid_requests_get_vllms_status(body: dict[str, Any], status: int, fragment: str) -> None:
    with pytest.raises(EmulatorError) as info:
        parse(**body)
    assert info.value.status == status
    assert fragment in info.value.message


@pytest.mark.parametrize("raw", [b"{", b"[1]", b""])
def test_undecodable_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(EmulatorError) as info:
        decode_body(raw)
    assert info.value.status == 400
