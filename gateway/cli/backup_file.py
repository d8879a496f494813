"""The backup file of ``vlgw backup`` / ``vlgw restore``: keys, usage and feedback as versioned JSONL.

One JSON object per line, for either store (Redis or the embedded file)::

    {"format": "vlgw-backup", "version": 1, "gateway_version": "0.1.0", "created_at": "...", "store": "redis"}
    {"kind": "secret", "value": "..."}             the generated signing secret, when the store has one
    {"kind": "key", "key_hash": "...", ...}          every key record: hashes only, never a key
    {"kind": "usage", "key": "app", "date": "2026-11-29", "counters": {...}}
    {"kind": "feedback", "entry": {...}}            without its id (ids are per store)
    {"kind": "end", "counts": {"key": 3, ...}}      a file without it was cut short

Lines are in a fixed order (keys oldest first, usage by key and date, feedback by time), so two
backups of the same data are the same bytes apart from the header. Restore reads and checks the
whole file before writing anything, refuses an unknown format version, and is idempotent: key
records are replaced by hash, usage counters set (not added), feedback added only when no
entry with the same content is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from gateway import __version__
from gateway.auth.principal import KeyRecord, Limits
from gateway.auth.store import KeyNameTaken, KeyStore
from gateway.devex.model import FeedbackEntry
from gateway.devex.store import DevexStore

FORMAT = "vlgw-backup"
VERSION = 1
KINDS = ("secret", "key", "usage", "feedback")
FAR_FUTURE = 2**42 / 1000  # unix seconds past any stored time (and any Redis stream id)


class BackupError(Exception):
    """The file cannot be restored (unknown version, cut short, not a backup, conflicts)."""


@dataclass
class Contents:
    """What a backup file holds, checked and decoded."""

    secret: str | None = None
    keys: list[KeyRecord] = field(default_factory=list)
    usage: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    feedback: list[FeedbackEntry] = field(default_factory=list)


# --- records <-> lines ---------------------------------------------------------------------------


def _key_line(record: KeyRecord) -> dict[str, Any]:
    return {
        "kind": "key", "key_hash": record.key_hash, "name": record.name, "key_id": record.key_id,
        "rpm": record.limits.rpm, "tpm": record.limits.tpm, "concurrency": record.limits.concurrency,
        "presets": _names(record.presets), "routes": _names(record.routes), "models": _names(record.models),
        "created_at": record.created_at, "last_used_at": record.last_used_at, "revoked_at": record.revoked_at,
        "expires_at": record.expires_at, "rotated_at": record.rotated_at, "signed": record.signed,
    }  # fmt: skip


def _names(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)


def _tuple(names: list[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(names)


def _key_record(line: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        name=line["name"], key_id=line["key_id"], key_hash=line["key_hash"],
        limits=Limits(rpm=line["rpm"], tpm=line["tpm"], concurrency=line["concurrency"]),
        presets=_tuple(line["presets"]), routes=_tuple(line["routes"]), models=_tuple(line["models"]),
        created_at=float(line["created_at"]), last_used_at=line["last_used_at"],
        revoked_at=line["revoked_at"], expires_at=line["expires_at"], rotated_at=line["rotated_at"],
        signed=bool(line["signed"]),
    )  # fmt: skip


def _feedback_line(entry: FeedbackEntry) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(entry)
    data.pop("id", None)
    return {"kind": "feedback", "entry": data}


# --- backup ----------------------------------------------------------------------------------------


async def dump_lines(keys: KeyStore, devex: DevexStore) -> AsyncIterator[dict[str, Any]]:
    """Every line of a backup of these stores, header first, ``end`` last."""
    counts = dict.fromkeys(KINDS, 0)
    yield {
        "format": FORMAT, "version": VERSION, "gateway_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "store": keys.backend,
    }  # fmt: skip
    secret = await keys.stored_secret()
    if secret is not None:
        counts["secret"] += 1
        yield {"kind": "secret", "value": secret}
    for record in await keys.list():
        counts["key"] += 1
        yield _key_line(record)
    usage = sorted([row async for row in devex.all_usage()], key=lambda row: (row[0], row[1]))
    for key_name, date, counters in usage:
        counts["usage"] += 1
        yield {"kind": "usage", "key": key_name, "date": date, "counters": dict(sorted(counters.items()))}
    entries = [_feedback_line(entry) async for entry in devex.feedback_between(0.0, FAR_FUTURE)]
    for line in sorted(entries, key=lambda ln: (ln["entry"]["created"], json.dumps(ln, sort_keys=True))):
        counts["feedback"] += 1
        yield line
    yield {"kind": "end", "counts": counts}


async def backup(keys: KeyStore, devex: DevexStore, out: IO[str]) -> dict[str, int]:
    """Write a backup to ``out``; returns the counts per kind."""
    counts: dict[str, int] = {}
    async for line in dump_lines(keys, devex):
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        if line.get("kind") == "end":
            counts = line["counts"]
    return counts


# --- restore ---------------------------------------------------------------------------------------


def parse(lines: Iterator[str]) -> Contents:
    """Decode and check a whole backup file; BackupError says what is wrong and where."""
    contents = Contents()
    counts = dict.fromkeys(KINDS, 0)
    ended = False
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BackupError(f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(line, dict):
            raise BackupError(f"line {number} is not a JSON object")
        if number == 1:
            _check_header(line)
            continue
        if ended:
            raise BackupError(f"line {number} follows the end marker")
        kind = line.get("kind")
        try:
            if kind == "secret":
                contents.secret = str(line["value"])
            elif kind == "key":
                contents.keys.append(_key_record(line))
            elif kind == "usage":
                counters = {str(k): int(v) for k, v in line["counters"].items()}
                contents.usage.append((str(line["key"]), str(line["date"]), counters))
            elif kind == "feedback":
                contents.feedback.append(msgspec.convert({**line["entry"], "id": ""}, FeedbackEntry))
            elif kind == "end":
                ended = True
                if line.get("counts") != counts:
                    raise BackupError(f"the end marker counts {line.get('counts')}, the file holds {counts}")
                continue
            else:
                raise BackupError(f"line {number} has an unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise BackupError(f"line {number} ({kind}) is malformed: {exc}") from None
        counts[kind] += 1
    if not ended:
        raise BackupError("the file has no end marker: it was cut short or is not a vlgw backup")
    return contents


def _check_header(line: dict[str, Any]) -> None:
    if line.get("format") != FORMAT:
        raise BackupError("not a vlgw backup (the first line has no 'format': 'vlgw-backup')")
    if line.get("version") != VERSION:
        raise BackupError(
            f"unknown backup format version {line.get('version')!r} (this vlgw {__version__} reads {VERSION})"
        )


async def restore(contents: Contents, keys: KeyStore, devex: DevexStore) -> dict[str, int]:
    """Write ``contents`` into the stores; returns what was written. BackupError on a conflict."""
    if contents.secret is not None:
        stored = await keys.stored_secret()
        if stored is not None and stored != contents.secret:
            raise BackupError(
                "the target store already has a different key-signing secret: keys from this backup "
                "would not verify there (restore into an empty store, or one restored from the same source)"
            )
        await keys.secret(contents.secret)
    conflicts = []
    for record in contents.keys:
        try:
            await keys.put(record)
        except KeyNameTaken:
            conflicts.append(record.name)
    for key_name, date, counters in contents.usage:
        await devex.set_usage(key_name, date, counters)
    added = await devex.restore_feedback(contents.feedback)
    if conflicts:
        raise BackupError(
            "restored everything except keys whose name another current key holds in the target: "
            + ", ".join(sorted(set(conflicts)))
        )
    return {"key": len(contents.keys), "usage": len(contents.usage), "feedback_added": added}
