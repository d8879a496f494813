"""``vlgw feedback export``: feedback as JSONL, for review and fine-tuning (docs/feedback-and-usage.md).

    vlgw feedback export --since 2026-11-01 [--until 2026-12-01] [--verdict bad] [--out feedback.jsonl]

Reads the same store as the server: Redis when ``GATEWAY_REDIS_URL`` is set, else the embedded
file in ``GATEWAY_DATA_DIR``. Each line is one feedback entry with the judged request (prompt,
preset and version, answer, image hashes, model; image bytes only when the operator opted in).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Sequence
from typing import IO

from gateway.devex import build_store
from gateway.ops.stores import open_stores
from gateway.settings import Settings, SettingsError, load_settings
from gateway.store.redis import StoreUnavailable


def parse_when(text: str) -> float:
    """``YYYY-MM-DD`` or an ISO date-time (UTC unless it says otherwise) as unix seconds."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``export`` sub-command to the ``feedback`` parser."""
    sub = parser.add_subparsers(dest="feedback_command", required=True)
    export = sub.add_parser("export", help="write feedback received in a time window as JSONL")
    export.add_argument("--since", type=parse_when, required=True, help="start (inclusive), e.g. 2026-11-01")
    export.add_argument("--until", type=parse_when, default=None, help="end (exclusive); default now")
    export.add_argument("--verdict", choices=("good", "bad"), default=None, help="only this verdict")
    export.add_argument("--out", default="-", help="output file (default: standard output)")


async def export(settings: Settings, since: float, until: float, out: IO[bytes], verdict: str | None) -> int:
    """Write matching entries to ``out``; returns how many."""
    async with open_stores(settings, operator=True) as stores:
        count = 0
        async for entry in build_store(settings, stores.redis, stores.db).feedback_between(since, until):
            if verdict is None or entry.verdict == verdict:
                out.write(entry.export_line())
                count += 1
        return count


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``vlgw feedback <command>``; the exit status."""
    until = args.until if args.until is not None else time.time()
    try:
        if args.out == "-":
            count = asyncio.run(export(settings, args.since, until, sys.stdout.buffer, args.verdict))
            sys.stdout.flush()
        else:
            with open(args.out, "wb") as out:
                count = asyncio.run(export(settings, args.since, until, out, args.verdict))
    except StoreUnavailable as exc:
        print(f"feedback store unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"exported {count} feedback entries", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.cli.feedback export ...`` (what ``vlgw feedback`` runs)."""
    parser = argparse.ArgumentParser(
        prog="vlgw feedback", description=__doc__.split("\n")[0] if __doc__ else None
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, load_settings())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
