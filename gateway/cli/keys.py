"""``vlgw keys create|list|rotate|revoke``: the operator's side of API keys.

``gateway/cli.py`` calls :func:`add_arguments` with its subparsers and :func:`run` with the parsed
arguments. ``create`` and ``rotate`` print the key alone on stdout (so
``KEY=$(vlgw keys create --name app)`` works) and a reminder on stderr; nothing else ever prints
a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

from gateway.auth.factory import build_key_manager
from gateway.auth.manager import KeyManager
from gateway.auth.principal import KeyRecord
from gateway.auth.store import KeyNameTaken
from gateway.auth.when import parse_duration, parse_expiry
from gateway.ops.stores import open_stores
from gateway.settings import Settings
from gateway.store.redis import StoreUnavailable


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _expiry(raw: str) -> float:
    try:
        return parse_expiry(raw, now=time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _grace(raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(subparsers: Any) -> None:
    """Add the ``keys`` command (create/list/rotate/revoke) to ``vlgw``'s subparsers."""
    keys = subparsers.add_parser("keys", help="create, list, rotate and revoke API keys")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="{create,list,rotate,revoke}")

    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="unique name (shown in logs and metrics)")
    create.add_argument("--rpm", type=_positive, help="requests per minute")
    create.add_argument("--tpm", type=_positive, help="tokens per minute (prompt, images and max_tokens)")
    create.add_argument("--concurrency", type=_positive, help="requests in flight at once")
    create.add_argument("--presets", type=_csv, help="allowed presets, comma-separated (default all)")
    create.add_argument("--preset", action="append", dest="preset_list", help="allowed preset (repeatable)")
    create.add_argument("--models", type=_csv, help="allowed models, comma-separated (default all)")
    create.add_argument("--route", action="append", dest="routes", help="allowed route (repeat; default all)")
    create.add_argument(
        "--expires", type=_expiry, help="stop working at DATE (2027-01-31, 2027-01-31T18:00Z) or after 90d"
    )

    listing = sub.add_parser("list", help="list keys (never the secret)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    rotate = sub.add_parser("rotate", help="a new secret for NAME; the old one works for the grace period")
    rotate.add_argument("name")
    rotate.add_argument("--grace", type=_grace, default=86_400.0, help="e.g. 24h (default), 30m, 0")
    rotate.add_argument("--expires", type=_expiry, help="expiry of the new key (default none)")

    revoke = sub.add_parser("revoke", help="revoke a key (effective within GATEWAY_KEY_CACHE_SECONDS)")
    revoke.add_argument("name")


def run(
    args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run ``vlgw keys ...``; returns the process exit code."""
    return asyncio.run(_run(args, settings, out, err))


@asynccontextmanager
async def operator_manager(settings: Settings) -> AsyncIterator[KeyManager]:
    """A KeyManager on the configured store, for one operator command."""
    async with open_stores(settings, operator=True) as stores:
        manager = build_key_manager(settings, stores.redis, stores.db)
        try:
            yield manager
        finally:
            await manager.aclose()


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    try:
        async with operator_manager(settings) as manager:
            return await _dispatch(args, manager, out, err)
    except StoreUnavailable as exc:
        print(f"error: the key store is unavailable ({exc})", file=err)
        return 2


async def _dispatch(args: argparse.Namespace, manager: KeyManager, out: TextIO, err: TextIO) -> int:
    command = args.keys_command
    if command == "create":
        presets = None
        if args.presets is not None or args.preset_list is not None:
            presets = [*(args.presets or []), *(args.preset_list or [])]
        try:
            plaintext, record = await manager.create(
                args.name, rpm=args.rpm, tpm=args.tpm, concurrency=args.concurrency,
                presets=presets, routes=args.routes, models=args.models, expires_at=args.expires,
            )  # fmt: skip
        except (KeyNameTaken, ValueError) as exc:
            print(f"error: {exc}", file=err)
            return 1
        print(plaintext, file=out)
        until = "" if record.expires_at is None else f", expires {_when(record.expires_at)} UTC"
        print(f"created key {record.name!r} ({record.key_id}...{until}): store it now, it is not shown again",
              file=err)  # fmt: skip
        return 0
    if command == "list":
        records = await manager.list()
        now = time.time()
        if args.json:
            for record in records:
                print(json.dumps(as_dict(record, now)), file=out)
        else:
            _print_table(records, now, out)
        return 0
    if command == "rotate":
        try:
            plaintext, new, old = await manager.rotate(
                args.name, grace_seconds=args.grace, expires_at=args.expires
            )
        except (LookupError, ValueError) as exc:
            print(f"error: {exc.args[0]}", file=err)
            return 1
        print(plaintext, file=out)
        print(f"rotated key {new.name!r}: new {new.key_id}..., the old {old.key_id}... works until "
              f"{_when(min(x for x in (old.expires_at, new.created_at + args.grace) if x is not None))} UTC; "
              "store the new key now, it is not shown again", file=err)  # fmt: skip
        return 0
    if command == "revoke":
        if await manager.revoke(args.name):
            print(f"revoked key {args.name!r}", file=err)
            return 0
        print(f"error: no active key called {args.name!r}", file=err)
        return 1
    raise AssertionError(f"unknown keys command {command!r}")


def as_dict(record: KeyRecord, now: float) -> dict[str, Any]:
    """A record for display: everything but the hash."""
    return {
        "name": record.name,
        "key_id": record.key_id,
        "status": record.status(now),
        "rpm": record.limits.rpm,
        "tpm": record.limits.tpm,
        "concurrency": record.limits.concurrency,
        "presets": None if record.presets is None else list(record.presets),
        "models": None if record.models is None else list(record.models),
        "routes": None if record.routes is None else list(record.routes),
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": record.expires_at,
        "rotated_at": record.rotated_at,
        "format": "signed" if record.signed else "legacy",
        "revoked_at": record.revoked_at,
    }


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _print_table(records: list[KeyRecord], now: float, out: TextIO) -> None:
    header = ("NAME", "KEY ID", "RPM", "TPM", "CONC", "PRESETS", "MODELS", "ROUTES", "CREATED", "LAST USED",
              "EXPIRES", "STATUS", "FORMAT")  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for r in records:
        rows.append((
            r.name, r.key_id + "...",
            *("-" if v is None else str(v) for v in (r.limits.rpm, r.limits.tpm, r.limits.concurrency)),
            *("all" if names is None else ",".join(names) for names in (r.presets, r.models, r.routes)),
            _when(r.created_at), _when(r.last_used_at), _when(r.expires_at), r.status(now),
            "signed" if r.signed else "legacy",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
