from __future__ import annotations

import argparse

import pytest

from gateway.emulator.cli import add_arguments, config_from_args
from gateway.emulator.config import EmulatorConfig, Faults


def test_defaults_match_the_recommended_vllm_flags() -> None:
    config = EmulatorConfig()
    assert (config.model, config.max_model_len, config.max_images, config.max_pixels) == (
        "qwen3-vl-8b",
        32768,
        4,
        1_310_720,
    )
    assert config.faults() == Faults()


@pytest.mark.parametrize(
    "bad",
    [{"max_model_len": 0}, {"min_pixels": 10, "max_pixels": 5}, {"error_rate": 2.0}, {"answer_tokens": 0}],
)
def test_invalid_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**bad)  # type: ignore[arg-type]


def test_faults_update_partially_and_refuse_unknown_knobs() -> None:
    faults = Faults().updated({"prefill_ms": 5, "hang": True})
    assert (faults.prefill_ms, faults.hang, faults.per_token_ms) == (5.0, True, 0.0)
    with pytest.raises(ValueError, match="unknown field"):
        Faults().updated({"explode": True})
    with pytest.raises(ValueError):
        Faults().updated({"error_status": 200})


def test_cli_flags_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--served-model-name",
            "x",
            "--max-model-len",
            "4096",
            "--prefill-ms",
            "20",
            "--hang",
            "--drop-after-chunks",
            "3",
            "--api-key",
            "k",
            "--limit-mm-per-prompt",
            '{"image": 2, "video": 0}',
            "--mm-processor-kwargs",
            '{"max_pixels": 500000}',
        ]
    )
    config = config_from_args(args)
    assert (config.model, config.max_model_len, config.prefill_ms, config.hang) == ("x", 4096, 20.0, True)
    assert (config.drop_after_chunks, config.api_key, config.max_images, config.max_pixels) == (
        3,
        "k",
        2,
        500000,
    )
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_cost_model_flags_build_the_config_and_it_is_off_by_default() -> None:
    assert EmulatorConfig().cost_model is None
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--cost-model", "h200", "--kv-tokens", "40000", "--decode-ms", "7.5", "--no-enable-prefix-caching"]
    )
    config = config_from_args(args)
    assert (config.cost_model, config.kv_tokens, config.decode_ms, config.enable_prefix_caching) == (
        "h200",
        40000,
        7.5,
        False,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"cost_model": "a100"},
        {"cost_model": "h200", "kv_tokens": 1000},  # below max_model_len: a full request never fits
        {"decode_ms": -1.0},
        {"max_num_batched_tokens": 0},
    ],
)
def test_invalid_cost_model_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**bad)  # type: ignore[arg-type]
