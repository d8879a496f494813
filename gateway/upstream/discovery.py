"""Where the replica set comes from, reloadable without a restart.

- ``GATEWAY_UPSTREAM_URLS``: the static list.
- ``GATEWAY_UPSTREAM_URLS_FILE``: one URL per line (``#`` comments), re-read when its mtime
  changes; when set, it replaces the static list (an unreadable or empty file keeps the last
  good set, so a half-written file never empties the pool).
- DNS (``GATEWAY_UPSTREAM_DNS_DISCOVERY``): an ``http://`` URL whose host is a name expands into
  one replica URL per resolved address, re-resolved every ``GATEWAY_UPSTREAM_DISCOVERY_INTERVAL``.
  A Kubernetes headless Service (``clusterIP: None``) resolves to one A record per ready pod, so
  pods joining and leaving are picked up. IPv4 addresses are preferred when a name has both.
  ``localhost``, IP literals and ``https://`` URLs (whose certificates name the host) are kept
  as written. A failed lookup keeps that name's last addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import structlog

from gateway.upstream.replica import Replica

log = structlog.get_logger("gateway.upstream")

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def normalise_url(line: str) -> str | None:
    """A base URL without a trailing slash, or None when the line is not an http(s) URL."""
    url = line.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def read_urls_file(path: Path) -> list[str]:
    """URLs from a file, one a line; blank lines and ``#`` comments skipped, bad lines logged."""
    urls: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        url = normalise_url(line)
        if url is None:
            log.warning("upstream_urls_file_bad_line", file=str(path), line=number)
            continue
        urls.append(url)
    return urls


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _with_host(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, ""))


def pick_family(addresses: Iterable[str]) -> list[str]:
    """Distinct addresses, sorted; IPv4 only when there are any (dual-stack names list both)."""
    unique = sorted(set(addresses))
    v4 = [a for a in unique if ":" not in a]
    return v4 or unique


class UrlSource:
    """The current replica URLs: static list or file, then DNS expansion."""

    def __init__(
        self, static: list[str], file: Path | None, *, dns: bool, resolver: Resolver | None = None
    ) -> None:
        self.static = list(static)
        self.file = file
        self.dns = dns
        self.resolver = resolver or resolve_addresses
        self._file_mtime: float | None = None
        self._file_urls: list[str] | None = None
        self._addresses: dict[str, list[str]] = {}  # last good lookup per base URL

    def base_urls(self) -> list[str]:
        """The configured URLs before DNS expansion (re-reads the file when it changed)."""
        if self.file is None:
            return self.static
        try:
            mtime = self.file.stat().st_mtime
            if mtime != self._file_mtime:
                urls = read_urls_file(self.file)
                self._file_mtime = mtime
                if urls:
                    self._file_urls = urls
                    log.info("upstream_urls_file_loaded", file=str(self.file), replicas=len(urls))
                else:
                    kept = self._file_urls is not None
                    log.warning("upstream_urls_file_empty", file=str(self.file), kept_last=kept)
        except OSError as exc:
            log.warning("upstream_urls_file_unreadable", file=str(self.file), error=type(exc).__name__)
        return self._file_urls if self._file_urls is not None else self.static

    def initial_urls(self) -> list[str]:
        """The URLs that need no DNS lookup (what a pool can start with before any I/O)."""
        return [url for url in self.base_urls() if not self._resolvable(url)]

    async def urls(self) -> list[str]:
        """Every replica URL now, DNS names expanded; order-preserving, duplicates dropped."""
        expanded: list[str] = []
        for url in self.base_urls():
            expanded.extend(await self._expand(url))
        return list(dict.fromkeys(expanded))

    def _resolvable(self, url: str) -> bool:
        parts = urlsplit(url)
        return self.dns and parts.scheme == "http" and not _is_literal(parts.hostname or "")

    async def _expand(self, url: str) -> list[str]:
        if not self._resolvable(url):
            return [url]
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            found = pick_family(await self.resolver(host, parts.port or 80))
        except (OSError, UnicodeError) as exc:
            found = []
            log.warning("upstream_dns_failed", host=host, error=type(exc).__name__)
        if found:
            self._addresses[url] = found
        addresses = self._addresses.get(url)
        if not addresses:
            return [url]  # never resolved: keep the name, health checks will judge it
        return [_with_host(url, address) for address in addresses]


def reconcile(
    current: list[Replica], urls: list[str], names: dict[str, str], *, healthy: bool, prefix: str = "r"
) -> tuple[list[Replica], list[Replica], list[Replica]]:
    """The replicas for ``urls`` (existing ones keep their state), and those added and removed.

    ``names`` maps every URL ever seen to its name, so a URL that leaves and comes back gets
    its old name, and a name is never given to another URL.
    """
    by_url = {r.url: r for r in current}
    added: list[Replica] = []
    replicas: list[Replica] = []
    for url in urls:
        replica = by_url.pop(url, None)
        if replica is None:
            replica = Replica(name=names.setdefault(url, f"{prefix}{len(names)}"), url=url, healthy=healthy)
            added.append(replica)
        replicas.append(replica)
    return replicas, added, list(by_url.values())
