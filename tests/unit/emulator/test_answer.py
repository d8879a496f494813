from __future__ import annotations

from gateway.emulator.answer import answer_tokens
from gateway.emulator.config import ANSWER_MARKER
from gateway.emulator.images import ImageInfo

IMAGE = ImageInfo("ab" * 32, 640, 480, "JPEG", "#7f7f7f", 302)


def test_answer_starts_with_the_marker_and_describes_the_input() -> None:
    text = "".join(answer_tokens(["what is this?"], [IMAGE], 24))
    assert text.startswith(ANSWER_MARKER)
    assert "1 image: 640x480 JPEG #7f7f7f;" in text
    assert "prompt 13 chars" in text


def test_answer_has_exactly_the_requested_length() -> None:
    for length in (1, 5, 24, 100):
        assert len(answer_tokens(["x"], [IMAGE] * 4, length)) == length


def test_answer_is_deterministic_and_input_dependent() -> None:
    assert answer_tokens(["a"], [], 24) == answer_tokens(["a"], [], 24)
    assert answer_tokens(["a"], [], 24) != answer_tokens(["b"], [], 24)
