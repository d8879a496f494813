"""``vlgw keys create|list|revoke``: the operator's side of API keys.

``gateway/cli.py`` calls :func:`add_arguments` with its subparsers and :func:`run` with the parsed
arguments. ``create`` prints the key alone on stdout (so ``KEY=$(vlgw keys create --name app)``
works) and a reminder on stderr; nothing else ever prints a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, TextIO

from gateway.auth.factory import build_key_store
from gateway.auth.manager import KeyManager
from gateway.auth.principal import KeyRecord
from gateway.auth.store import KeyNameTaken
from gateway.settings import Settings
from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import ResilientRedis, StoreUnavailable

CLI_REDIS_TIMEOUT = 5.0  # an operator command can wait longer than a request


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(subparsers: Any) -> None:
    """Add the ``keys`` command (with create/list/revoke) to ``vlgw``'s subparsers."""
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="{create,list,revoke}")

    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="unique name (shown in logs and metrics)")
    create.add_argument("--rpm", type=_positive, help="requests per minute")
    create.add_argument("--tpm", type=_positive, help="tokens per minute (prompt, images and max_tokens)")
    create.add_argument("--concurrency", type=_positive, help="requests in flight at once")
    create.add_argument(
        "--preset", action="append", dest="presets", help="allowed preset (repeat; default all)"
    )
    create.add_argument("--route", action="append", dest="routes", help="allowed route (repeat; default all)")

    listing = sub.add_parser("list", help="list keys (never the secret)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    revoke = sub.add_parser("revoke", help="revoke a key (effective within GATEWAY_KEY_CACHE_SECONDS)")
    revoke.add_argument("name")


def run(
    args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run ``vlgw keys ...``; returns the process exit code."""
    return asyncio.run(_run(args, settings, out, err))


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    redis: ResilientRedis | None = None
    db: EmbeddedDB | None = None
    if settings.redis_url:
        redis = ResilientRedis(
            settings.redis_url,
            timeout=max(settings.redis_timeout, CLI_REDIS_TIMEOUT),
            breaker_failures=settings.redis_breaker_failures,
            breaker_reset_seconds=settings.redis_breaker_reset_seconds,
        )
    else:
        db = EmbeddedDB.in_dir(settings.data_dir)
    manager = KeyManager(build_key_store(settings, redis, db))
    try:
        return await _dispatch(args, manager, out, err)
    except StoreUnavailable as exc:
        print(f"error: the key store is unavailable ({exc})", file=err)
        return 2
    finally:
        await manager.aclose()
        if redis is not None:
            await redis.aclose()
        if db is not None:
            db.close()


async def _dispatch(args: argparse.Namespace, manager: KeyManager, out: TextIO, err: TextIO) -> int:
    if args.keys_command == "create":
        try:
            plaintext, record = await manager.create(
                args.name, rpm=args.rpm, tpm=args.tpm, concurrency=args.concurrency,
                presets=args.presets, routes=args.routes,
            )  # fmt: skip
        except (KeyNameTaken, ValueError) as exc:
            print(f"error: {exc}", file=err)
            return 1
        print(plaintext, file=out)
        print(
            f"created key {record.name!r} ({record.key_id}...): store it now, it is not shown again", file=err
        )
        return 0
    if args.keys_command == "list":
        records = await manager.list()
        if args.json:
            for record in records:
                print(json.dumps(_as_dict(record)), file=out)
        else:
            _print_table(records, out)
        return 0
    if args.keys_command == "revoke":
        if await manager.revoke(args.name):
            print(f"revoked key {args.name!r}", file=err)
            return 0
        print(f"error: no active key called {args.name!r}", file=err)
        return 1
    raise AssertionError(f"unknown keys command {args.keys_command!r}")


def _as_dict(record: KeyRecord) -> dict[str, Any]:
    """A record for display: everything but the hash."""
    return {
        "name": record.name,
        "key_id": record.key_id,
        "rpm": record.limits.rpm,
        "tpm": record.limits.tpm,
        "concurrency": record.limits.concurrency,
        "presets": None if record.presets is None else list(record.presets),
        "routes": None if record.routes is None else list(record.routes),
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
    }


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _print_table(records: list[KeyRecord], out: TextIO) -> None:
    header = ("NAME", "KEY ID", "RPM", "TPM", "CONC", "PRESETS", "ROUTES", "CREATED", "LAST USED", "STATUS")
    rows: list[tuple[str, ...]] = [header]
    for r in records:
        rows.append((
            r.name, r.key_id + "...",
            *("-" if v is None else str(v) for v in (r.limits.rpm, r.limits.tpm, r.limits.concurrency)),
            "all" if r.presets is None else ",".join(r.presets),
            "all" if r.routes is None else ",".join(r.routes),
            _when(r.created_at), _when(r.last_used_at),
            f"revoked {_when(r.revoked_at)}" if r.revoked else "active",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
