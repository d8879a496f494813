"""``vlgw backup --out FILE`` / ``vlgw restore FILE`` (CONTRACT.md §6); the format: :mod:`.backup_file`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from gateway.auth.factory import build_key_store
from gateway.auth.store import KeyStore
from gateway.cli.backup_file import BackupError, backup, parse, restore
from gateway.devex.service import build_store
from gateway.devex.store import DevexStore
from gateway.ops.stores import open_stores
from gateway.settings import Settings
from gateway.store.redis import StoreUnavailable

# --- CLI -------------------------------------------------------------------------------------------


def add_arguments(subparsers: Any) -> None:
    """Add ``backup`` and ``restore`` to ``vlgw``'s subparsers."""
    dump = subparsers.add_parser(
        "backup", help="write keys (hashes only), usage and feedback to a JSONL file"
    )
    dump.add_argument("--out", required=True, help="file to write (- for stdout); created mode 0600")
    load = subparsers.add_parser("restore", help="restore a backup into the configured store (idempotent)")
    load.add_argument("file", help="backup file (- for stdin)")


@contextlib.asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[tuple[KeyStore, DevexStore]]:
    async with open_stores(settings, operator=True) as stores:
        yield (
            build_key_store(settings, stores.redis, stores.db),
            build_store(settings, stores.redis, stores.db),
        )


def run_backup(args: argparse.Namespace, settings: Settings, err: TextIO = sys.stderr) -> int:
    """``vlgw backup --out FILE``: written to FILE.tmp, then renamed, so FILE is never half a backup."""

    async def main() -> dict[str, int]:
        async with _stores(settings) as (keys, devex):
            if args.out == "-":
                return await backup(keys, devex, sys.stdout)
            target = Path(args.out)
            tmp = target.with_name(target.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    counts = await backup(keys, devex, out)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            tmp.replace(target)
            return counts

    try:
        counts = asyncio.run(main())
    except StoreUnavailable as exc:
        print(f"error: the store is unavailable ({exc})", file=err)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=err)
        return 1
    print("backed up " + ", ".join(f"{n} {kind}" for kind, n in counts.items()), file=err)
    return 0


def run_restore(args: argparse.Namespace, settings: Settings, err: TextIO = sys.stderr) -> int:
    """``vlgw restore FILE``."""
    try:
        if args.file == "-":
            contents = parse(iter(sys.stdin))
        else:
            with open(args.file, encoding="utf-8") as handle:
                contents = parse(iter(handle))
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=err)
        return 1
    except (BackupError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=err)
        return 1

    async def main() -> dict[str, int]:
        async with _stores(settings) as (keys, devex):
            return await restore(contents, keys, devex)

    try:
        done = asyncio.run(main())
    except StoreUnavailable as exc:
        print(f"error: the store is unavailable ({exc})", file=err)
        return 2
    except BackupError as exc:
        print(f"error: {exc}", file=err)
        return 1
    added = done["feedback_added"]
    print(f"restored {done['key']} keys, {done['usage']} usage days, {added} new feedback entries", file=err)
    return 0
