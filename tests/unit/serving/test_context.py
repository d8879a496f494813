"""The context check as vLLM 0.33 makes it: refuse only a prompt that leaves no room; otherwise the
answer is shortened to what is left (UPSTREAM.md, "Context")."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from gateway.errors import ContextOverflow
from gateway.images import ImageIntake
from gateway.serving.context import check_context
from gateway.settings import Settings
from tests.unit.images import factory


@pytest.fixture
async def intake() -> AsyncIterator[ImageIntake]:
    intake = ImageIntake(Settings(_env_file=None))  # type: ignore[call-arg]
    yield intake
    await intake.aclose()


async def test_real_images_count_at_their_visual_tokens(intake: ImageIntake) -> None:
    photo = base64.b64encode(factory.flat(4032, 3024)).decode()  # 1,232 tokens each at the budget
    images = await intake.prepare([photo, photo])
    assert check_context(text_tokens=100, images=images, max_tokens=512, max_model_len=32_768) == 512
    # prompt 2,564 fits in 3,000 but prompt + 512 does not: shortened to the 436 tokens left
    assert check_context(text_tokens=100, images=images, max_tokens=512, max_model_len=3_000) == 436
    with pytest.raises(ContextOverflow) as caught:
        check_context(text_tokens=100, images=images, max_tokens=512, max_model_len=2_048)
    assert caught.value.code == 40006 and caught.value.reason == "context"
    assert "2564 tokens (2464 for 2 image(s)" in caught.value.message


class Clip:
    visual_tokens = 900


@pytest.mark.parametrize(
    ("text", "max_model_len", "room"),
    [(0, 1_000, 100), (99, 1_000, 1), (1_000, 2_048, 100)],
)
def test_room_left(text: int, max_model_len: int, room: int) -> None:
    media = [Clip()] if max_model_len == 1_000 else []
    assert check_context(text_tokens=text, images=media, max_tokens=100, max_model_len=max_model_len) == room


@pytest.mark.parametrize("text", [100, 101, 5_000])
def test_a_prompt_that_fills_the_context_is_40006(text: int) -> None:
    with pytest.raises(ContextOverflow):
        check_context(text_tokens=text, images=[Clip()], max_tokens=1, max_model_len=1_000)
