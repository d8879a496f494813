"""The replica set: URL file reloads, DNS expansion with an injected resolver, stable names."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gateway.upstream.discovery import UrlSource, pick_family, read_urls_file
from gateway.upstream.pool import ReplicaPool
from tests.unit.upstream.fleet import Fleet

PoolFactory = Callable[..., ReplicaPool]


class FakeDNS:
    """A resolver answering from a dict; raises OSError (like getaddrinfo) for unknown names."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.records:
            raise OSError(f"cannot resolve {host}")
        return list(self.records[host])


def names_by_url(pool: ReplicaPool) -> dict[str, str]:
    return {r.url: r.name for r in pool.replicas}


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + bump))  # mtime changes even within one clock tick


def test_urls_file_skips_comments_blanks_and_bad_lines(tmp_path: Path) -> None:
    file = tmp_path / "replicas.txt"
    file.write_text("# vLLM replicas\nhttp://10.0.0.1:8000/\n\nftp://nope\nhttp://10.0.0.2:8000  # gpu1\n")
    assert read_urls_file(file) == ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]


def test_pick_family_prefers_ipv4_and_dedupes() -> None:
    assert pick_family(["::1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]) == ["10.0.0.1", "10.0.0.2"]
    assert pick_family(["fd00::2", "fd00::1"]) == ["fd00::1", "fd00::2"]


async def test_dns_name_expands_to_one_replica_per_address(pool_factory: PoolFactory) -> None:
    dns = FakeDNS({"vllm-headless": ["10.1.0.7", "10.1.0.5", "10.1.0.6"]})
    pool = pool_factory(["http://vllm-headless:8000", "http://10.2.0.1:8000"], resolver=dns)
    assert [r.url for r in pool.replicas] == ["http://10.2.0.1:8000"]  # literals need no lookup
    await pool.refresh()
    assert [r.url for r in pool.replicas] == [
        "http://10.1.0.5:8000",
        "http://10.1.0.6:8000",
        "http://10.1.0.7:8000",
        "http://10.2.0.1:8000",
    ]
    assert dns.lookups == [("vllm-headless", 8000)]


async def test_dns_changes_keep_names_of_surviving_replicas(pool_factory: PoolFactory) -> None:
    dns = FakeDNS({"vllm": ["10.1.0.1", "10.1.0.2"]})
    pool = pool_factory(["http://vllm:8000"], resolver=dns)
    await pool.refresh()
    first = names_by_url(pool)
    dns.records["vllm"] = ["10.1.0.2", "10.1.0.3"]  # a pod replaced
    await pool.refresh()
    second = names_by_url(pool)
    assert second["http://10.1.0.2:8000"] == first["http://10.1.0.2:8000"]
    assert "http://10.1.0.1:8000" not in second
    assert second["http://10.1.0.3:8000"] not in first.values()  # a new name, never a reused one
    dns.records["vllm"] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]  # the old address is back
    await pool.refresh()
    assert names_by_url(pool)["http://10.1.0.1:8000"] == first["http://10.1.0.1:8000"]


async def test_failed_lookup_keeps_the_last_addresses(pool_factory: PoolFactory) -> None:
    dns = FakeDNS({"vllm": ["10.1.0.1", "10.1.0.2"]})
    pool = pool_factory(["http://vllm:8000"], resolver=dns)
    await pool.refresh()
    del dns.records["vllm"]
    await pool.refresh()
    assert len(pool.replicas) == 2


async def test_unresolvable_name_is_kept_as_written(pool_factory: PoolFactory) -> None:
    pool = pool_factory(["http://nowhere.invalid:8000"], resolver=FakeDNS({}))
    await pool.refresh()
    assert [r.url for r in pool.replicas] == ["http://nowhere.invalid:8000"]


async def test_https_localhost_and_disabled_dns_are_not_expanded() -> None:
    dns = FakeDNS({"vllm": ["10.1.0.1", "10.1.0.2"]})
    urls = ["https://vllm:8443", "http://localhost:8000"]
    assert await UrlSource(urls, None, dns=True, resolver=dns).urls() == urls
    assert await UrlSource(["http://vllm:8000"], None, dns=False, resolver=dns).urls() == ["http://vllm:8000"]
    assert dns.lookups == []


async def test_urls_file_is_reloaded_when_it_changes(pool_factory: PoolFactory, tmp_path: Path) -> None:
    file = tmp_path / "replicas.txt"
    write(file, "http://10.3.0.1:8000\nhttp://10.3.0.2:8000\n", bump=0)
    pool = pool_factory(["http://10.9.9.9:8000"], upstream_urls_file=file)
    assert [r.name for r in pool.replicas] == ["r0", "r1"]  # the file replaces the static list
    write(file, "http://10.3.0.2:8000\nhttp://10.3.0.3:8000\n", bump=10)
    await pool.refresh()
    assert names_by_url(pool) == {"http://10.3.0.2:8000": "r1", "http://10.3.0.3:8000": "r2"}
    write(file, "", bump=20)  # emptied (or half-written): keep the last good set
    await pool.refresh()
    assert len(pool.replicas) == 2
    file.unlink()
    await pool.refresh()
    assert len(pool.replicas) == 2


async def test_replicas_added_at_runtime_are_checked_before_taking_traffic(
    pool_factory: PoolFactory, fleet_factory: Callable[..., Fleet], tmp_path: Path
) -> None:
    fleet = fleet_factory(2)
    file = tmp_path / "replicas.txt"
    write(file, f"{fleet.urls[0]}\n", bump=0)
    pool = pool_factory([fleet.urls[0]], upstream_urls_file=file, upstream_discovery_interval=0.05)
    await pool.start()
    write(file, f"{fleet.urls[0]}\n{fleet.urls[1]}\nhttp://127.0.0.1:9\n", bump=10)
    await pool.refresh()
    health = {r.url: r.in_rotation() for r in pool.replicas}
    assert health == {fleet.urls[0]: True, fleet.urls[1]: True, "http://127.0.0.1:9": False}
