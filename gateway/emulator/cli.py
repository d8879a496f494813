"""``vlgw emulator``: flags like ``vllm serve``'s, plus the fault knobs."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields
from typing import Any

import uvicorn

from gateway.emulator.app import create_emulator_app
from gateway.emulator.config import EmulatorConfig

_HELP = {
    "model": "served model name (vLLM's --served-model-name)",
    "max_model_len": "context length in tokens",
    "max_images": "images allowed per prompt (vLLM's --limit-mm-per-prompt image)",
    "max_videos": "videos allowed per prompt (vLLM's --limit-mm-per-prompt video)",
    "video_num_frames": "frames kept per video, -1 for all or by --video-fps (vLLM's --media-io-kwargs)",
    "video_fps": "frame rate of JPEG-sequence videos, and of sampling when frames are -1",
    "min_pixels": "Qwen processor min_pixels",
    "max_pixels": "Qwen processor max_pixels (vLLM's --mm-processor-kwargs max_pixels)",
    "max_num_seqs": "running slots; further requests wait",
    "api_key": "require 'Authorization: Bearer KEY' on /v1 routes",
    "fetch_timeout": "seconds to fetch an image URL",
    "mm_cache_items": "items in the emulated multi-modal cache",
    "request_log_size": "chat requests kept for GET /emulator/requests",
    "seed": "seed of the RNG behind --error-rate",
    "cost_model": "GPU cost model: 'h200' times prefill from measured H200 points, batches, budgets KV",
    "decode_ms": "cost model: one decode step's time before KV reads",
    "decode_ms_per_1k_kv": "cost model: decode step time per 1,000 tokens of KV attended",
    "kv_tokens": "cost model: KV cache budget in tokens",
    "max_num_batched_tokens": "cost model: prompt tokens prefilled per engine step",
    "enable_prefix_caching": "cost model: reuse a repeated image's KV (vLLM's default)",
    "answer_tokens": "tokens in every answer before max_tokens truncates it",
    "prefill_ms": "delay before the first token",
    "per_token_ms": "delay between tokens",
    "error_rate": "fraction of chat requests answered with --error-status",
    "error_every": "answer every Nth chat request with --error-status (0: off)",
    "error_status": "HTTP status of injected errors",
    "hang": "accept chat requests and never answer",
    "drop_after_chunks": "close the connection after N stream chunks, without [DONE]",
    "stream_error_after_chunks": "send an error event after N stream chunks, then [DONE]",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's flags (one per EmulatorConfig field, plus --host/--port) to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    defaults = EmulatorConfig()
    for field in fields(EmulatorConfig):
        flag = "--" + field.name.replace("_", "-")
        names = [flag, "--served-model-name"] if field.name == "model" else [flag]
        default = getattr(defaults, field.name)
        help_text = f"{_HELP.get(field.name, field.name)} (default {default})"
        if field.name == "hang":
            parser.add_argument(*names, dest=field.name, action="store_true", help=help_text)
            continue
        if isinstance(default, bool):
            parser.add_argument(
                *names,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
            continue
        kind: Any = type(default) if default is not None else int
        if field.name in ("api_key", "cost_model"):
            kind = str
        parser.add_argument(*names, dest=field.name, type=kind, default=default, help=help_text)
    # vLLM spellings, so a `vllm serve` command line can be pasted.
    parser.add_argument(
        "--limit-mm-per-prompt",
        dest="limit_mm_per_prompt",
        default=None,
        help='vLLM-style JSON, e.g. \'{"image": 4, "video": 1}\' (sets --max-images, --max-videos)',
    )
    parser.add_argument(
        "--media-io-kwargs",
        dest="media_io_kwargs",
        default=None,
        help='vLLM-style JSON, e.g. \'{"video": {"fps": 2, "num_frames": -1}}\' (sets --video-*)',
    )
    parser.add_argument(
        "--mm-processor-kwargs",
        dest="mm_processor_kwargs",
        default=None,
        help="vLLM-style JSON, e.g. '{\"max_pixels\": 1310720}' (sets --min/--max-pixels)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """An EmulatorConfig from parsed flags (vLLM-style JSON flags override the plain ones)."""
    values = {field.name: getattr(args, field.name) for field in fields(EmulatorConfig)}
    if args.limit_mm_per_prompt:
        limits = json.loads(args.limit_mm_per_prompt)
        values["max_images"] = int(limits.get("image", values["max_images"]))
        values["max_videos"] = int(limits.get("video", values["max_videos"]))
    if args.media_io_kwargs:
        video = json.loads(args.media_io_kwargs).get("video", {})
        values["video_fps"] = float(video.get("fps", values["video_fps"]))
        values["video_num_frames"] = int(video.get("num_frames", values["video_num_frames"]))
    if args.mm_processor_kwargs:
        kwargs = json.loads(args.mm_processor_kwargs)
        values["min_pixels"] = int(kwargs.get("min_pixels", values["min_pixels"]))
        values["max_pixels"] = int(kwargs.get("max_pixels", values["max_pixels"]))
    return EmulatorConfig(**values)


def run(args: argparse.Namespace) -> None:
    """Serve the emulator with uvicorn until interrupted."""
    config = config_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_emulator_app(config), host=args.host, port=args.port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    """Run standalone: ``python -m gateway.emulator.cli``."""
    parser = argparse.ArgumentParser(prog="vlgw emulator", description="vLLM emulator (not a model)")
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
