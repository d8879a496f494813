"""The backup file: what ``parse`` refuses, and ``restore``'s conflicts, over both stores."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.auth import KeyManager, RedisKeyStore, SqliteKeyStore
from gateway.cli import backup as backup_cli
from gateway.cli.backup_file import BackupError, backup, parse, restore
from gateway.devex.redis_store import RedisDevexStore
from gateway.devex.sqlite_store import SqliteDevexStore
from gateway.settings import Settings
from gateway.store import EmbeddedDB
from tests.servers import free_port
from tests.unit.store.helpers import resilient


@pytest.fixture(params=["embedded", "redis"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple]:
    """(key store, devex store) factories sharing one backing store."""
    if request.param == "embedded":
        db = EmbeddedDB.in_dir(tmp_path)
        yield SqliteKeyStore(db), SqliteDevexStore(db)
        db.close()
    else:
        client = resilient(request.getfixturevalue("redis_url"), timeout=2.0)
        yield RedisKeyStore(client), RedisDevexStore(client)
        await client.aclose()


async def dump(keys, devex) -> list[str]:
    out = io.StringIO()
    await backup(keys, devex, out)
    return out.getvalue().splitlines()


async def test_a_name_held_by_another_current_key_is_reported_after_the_rest(stores) -> None:
    keys, devex = stores
    await KeyManager(keys).create("app")
    lines = await dump(keys, devex)
    record = json.loads(lines[2])
    other = {**record, "key_hash": "f" * 64, "key_id": "vlgw_other"}  # another key called "app"
    lines = [lines[0], lines[1], json.dumps(other), *lines[2:]]
    lines[-1] = json.dumps({"kind": "end", "counts": {"secret": 1, "key": 2, "usage": 0, "feedback": 0}})
    contents = parse(iter(lines))
    with pytest.raises(BackupError, match="app"):
        await restore(contents, keys, devex)
    assert len(await keys.list()) == 1  # the stored key kept its name


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda ls: [ls[0], "{not json", *ls[1:]], "line 2 is not JSON"),
        (lambda ls: [ls[0], "[1, 2]", *ls[1:]], "not a JSON object"),
        (lambda ls: [ls[0], '{"kind": "mystery"}', *ls[1:]], "unknown kind 'mystery'"),
        (lambda ls: [ls[0], '{"kind": "key", "name": "x"}', *ls[1:]], "(key) is malformed"),
        (lambda ls: [*ls, '{"kind": "key"}'], "follows the end marker"),
        (lambda ls: [ls[0], *ls[2:]], "the end marker counts"),  # a line lost in the middle
    ],
)
async def test_parse_refuses_damaged_files(stores, edit, complaint) -> None:
    keys, devex = stores
    await KeyManager(keys).create("app")
    lines = edit(await dump(keys, devex))
    with pytest.raises(BackupError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse(iter(lines))


def test_an_unreachable_store_exits_2(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    err = io.StringIO()
    args = argparse.Namespace(out=str(tmp_path / "b.jsonl"))
    assert backup_cli.run_backup(args, settings, err=err) == 2 and "unavailable" in err.getvalue()
    assert not (tmp_path / "b.jsonl").exists() and not (tmp_path / "b.jsonl.tmp").exists()
