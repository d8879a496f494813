"""``vlgw``: serve the gateway, run the emulator, manage keys, back up and restore (CONTRACT.md §6)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gateway.settings import SettingsError, load_settings


def _export(name: str, value: object) -> None:
    # Worker processes read their settings from the environment, so CLI overrides go there.
    if value is not None:
        os.environ[f"GATEWAY_{name}"] = str(value)


def _serve(args: argparse.Namespace) -> int:
    _export("HOST", args.host)
    _export("PORT", args.port)
    _export("WORKERS", args.workers)
    settings = load_settings()
    from gateway.ops.server import serve

    serve(settings)
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from gateway.emulator.cli import run

    run(args)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from gateway.cli.keys import run

    return run(args, load_settings())


def _feedback(args: argparse.Namespace) -> int:
    from gateway.cli import feedback as feedback_cli

    return feedback_cli.run(args, load_settings())


def _backup(args: argparse.Namespace) -> int:
    from gateway.cli import backup

    return backup.run_backup(args, load_settings())


def _restore(args: argparse.Namespace) -> int:
    from gateway.cli import backup

    return backup.run_restore(args, load_settings())


def _dev(args: argparse.Namespace) -> int:
    from gateway.cli.dev import run_dev

    return run_dev(port=args.port, emulator_port=args.emulator_port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlgw", description="Gateway for a vLLM server running Qwen3-VL")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (settings from GATEWAY_* variables)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None)
    serve.set_defaults(func=_serve)

    from gateway.emulator.cli import add_arguments as emulator_arguments

    emulator = sub.add_parser("emulator", help="run the bundled vLLM emulator (a stand-in, not a model)")
    emulator_arguments(emulator)
    emulator.set_defaults(func=_emulator)

    from gateway.cli.keys import add_arguments as keys_arguments

    keys_arguments(sub)
    sub.choices["keys"].set_defaults(func=_keys)

    from gateway.cli import feedback as feedback_cli

    feedback = sub.add_parser("feedback", help="export app feedback as JSONL")
    feedback_cli.add_arguments(feedback)
    feedback.set_defaults(func=_feedback)

    from gateway.cli import backup

    backup.add_arguments(sub)
    sub.choices["backup"].set_defaults(func=_backup)
    sub.choices["restore"].set_defaults(func=_restore)

    dev = sub.add_parser("dev", help="local try-out: the gateway, plus the emulator when no vLLM answers")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--emulator-port", type=int, default=8000)
    dev.set_defaults(func=_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
