from __future__ import annotations

import pytest

from gateway.emulator.errors import EmulatorError
from gateway.emulator.tokens import prompt_tokens, resolve_max_tokens, text_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("abcd", 1), ("abcde", 2), ("猫が好き", 4), ("a猫", 2), ("café", 2)],
)
def test_text_tokens_follow_the_documented_rule(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


def test_prompt_tokens_add_template_overhead_and_images() -> None:
    # 2 messages x 5 + 3 for the assistant prompt + 3 text tokens + 302 image tokens
    assert prompt_tokens(["hello", "hi"], 2, 302) == 10 + 3 + 3 + 302


def test_omitted_max_tokens_gets_the_rest_of_the_context() -> None:
    assert resolve_max_tokens(None, 100, 1000) == 900


@pytest.mark.parametrize(
    ("requested", "prompt", "granted"), [(10, 995, 5), (2000, 1, 999), (50, 100, 50), (900, 100, 900)]
)
def test_prompt_plus_max_tokens_over_the_context_is_shortened_like_vllm_0_33(
    requested: int, prompt: int, granted: int
) -> None:
    assert resolve_max_tokens(requested, prompt, 1000) == granted


def test_a_prompt_over_the_context_is_vllms_400() -> None:
    with pytest.raises(EmulatorError, match="maximum context length is 1000 tokens") as info:
        resolve_max_tokens(10, 1001, 1000)
    assert info.value.status == 400 and "1001 input tokens" in info.value.message


def test_a_prompt_of_exactly_the_context_leaves_max_tokens_zero() -> None:
    with pytest.raises(EmulatorError, match="max_tokens must be at least 1, got 0") as info:
        resolve_max_tokens(None, 1000, 1000)
    assert info.value.status == 400
