"""The app request body (CONTRACT.md §1): ``image`` or ``video``, never both, one of them required."""

from __future__ import annotations

import json

import pytest

from gateway import errors
from gateway.api.body import decode_json
from gateway.api.schemas import QwenVLRequest


def decode(body: dict[str, object]) -> QwenVLRequest:
    return decode_json(json.dumps(body).encode(), QwenVLRequest)


def test_image_or_a_list_of_images() -> None:
    assert decode({"image": "https://example.org/a.jpg"}).images() == ["https://example.org/a.jpg"]
    assert decode({"image": ["a", "b"], "prompt": "?"}).images() == ["a", "b"]


def test_video_alone_is_a_valid_body() -> None:
    req = decode({"video": "data:video/mp4;base64,AAAA", "prompt": "what happens?"})
    assert req.video == "data:video/mp4;base64,AAAA" and req.images() == []


@pytest.mark.parametrize(
    ("body", "param"),
    [({"prompt": "what is this?"}, "image"), ({}, "image"), ({"image": "x", "video": "y"}, "video")],
    ids=["neither", "empty", "both"],
)
def test_image_and_video_are_exclusive_and_one_is_required(body: dict[str, object], param: str) -> None:
    with pytest.raises(errors.InvalidBody) as refused:
        decode(body)
    assert refused.value.code == 40001 and refused.value.param == param
