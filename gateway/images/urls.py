"""The URL policy for image fetches: scheme, credentials, port, host, and address checks.

``UrlPolicy.check`` refuses a URL before any network I/O; ``UrlPolicy.check_address`` judges
each address a name resolves to. The outgoing request is rebuilt from the parsed parts with the
checked IP as its host, so no second parser (httpx, a proxy, a resolver) can read the URL
differently from the check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import ImageURLRefused
from gateway.images.addresses import (
    HostError,
    IPAddress,
    is_local_name,
    is_public,
    normalise_hostname,
    parse_ipv4,
    parse_ipv6,
    unwrap,
)
from gateway.images.limits import refuse

DEFAULT_PORTS = {"http": 80, "https": 443}
# Longer is refused (40003): far above any real image URL (signed CDN URLs run to ~2 KB) and
# below what servers and httpx accept (httpx: 64 KB).
MAX_URL_LENGTH = 8192
# Control characters, space and backslash: browsers, curl and Python disagree on them.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True, slots=True)
class Target:
    """One checked hop: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # a normalised DNS name, or the text of an IP literal (no brackets)
    port: int
    path: str  # path and query, always starting with "/"
    literal: IPAddress | None  # the host when it is an IP literal
    trusted: bool  # allowlisted, or private addresses allowed: skip the public-address rule

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The request URL with ``address`` in place of the host name."""
        host = f"[{address.compressed}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


class UrlPolicy:
    """Which URLs an image fetch may follow (settings: ``image_allow_private_urls`` and friends).

    ``media`` ("image", "video") only names the thing fetched in refusal messages.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        allowlist: Iterable[str],
        ports: Iterable[int],
        media: str = "image",
    ) -> None:
        self.media = media
        self.allow_private = allow_private
        self.ports = frozenset(ports)
        self._hosts: set[str] = set()
        self._host_ports: set[tuple[str, int]] = set()
        for entry in allowlist:
            host, port = _split_allowlist_entry(entry)
            if port is None:
                self._hosts.add(host)
            else:
                self._host_ports.add((host, port))

    def check(self, url: str) -> Target:
        """A Target for ``url``, or ImageURLRefused (40003) saying which rule it broke."""
        if len(url) > MAX_URL_LENGTH:
            raise refuse(
                ImageURLRefused,
                f"{self.media} URL is {len(url)} characters; at most {MAX_URL_LENGTH}",
                "malformed",
            )
        if _UNSAFE.search(url):
            raise refuse(
                ImageURLRefused, f"{self.media} URL contains spaces, control characters or '\\'", "host"
            )
        scheme = url.partition(":")[0].lower()
        if scheme not in DEFAULT_PORTS:
            raise refuse(
                ImageURLRefused, f"{self.media} URL scheme {scheme!r} refused: only http(s)", "scheme"
            )
        try:
            parts = urlsplit(url)
            explicit_port = parts.port
        except ValueError as exc:
            raise refuse(ImageURLRefused, f"{self.media} URL is malformed: {exc}", "malformed") from None
        if "@" in parts.netloc:
            raise refuse(
                ImageURLRefused, f"{self.media} URL must not carry credentials (user@host)", "credentials"
            )
        raw_host = parts.hostname
        if not raw_host:
            raise refuse(ImageURLRefused, f"{self.media} URL has no host", "host")
        try:
            host, literal = _parse_host(raw_host, bracketed=parts.netloc.startswith("["))
        except HostError as exc:
            raise refuse(ImageURLRefused, f"{self.media} URL refused: {exc}", "host") from None
        port = DEFAULT_PORTS[scheme] if explicit_port is None else explicit_port
        if port not in self.ports and (host, port) not in self._host_ports:
            raise refuse(ImageURLRefused, f"{self.media} URL port {port} refused", "port")
        trusted = self.allow_private or host in self._hosts or (host, port) in self._host_ports
        if not trusted and is_local_name(host):
            raise refuse(ImageURLRefused, f"{self.media} URL host {host!r} is local", "address")
        path = parts.path or "/"
        if not path.startswith("/"):
            path = "/" + path
        if parts.query:
            path = f"{path}?{parts.query}"
        target = Target(url, scheme, host, port, path, literal, trusted)
        if literal is not None:
            self.check_address(target, literal)
        return target

    def check_address(self, target: Target, address: IPAddress | str) -> IPAddress:
        """The address, parsed; ImageURLRefused when the target may not reach it."""
        try:
            parsed = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            raise refuse(
                ImageURLRefused, f"resolver returned a malformed address {address!r}", "address"
            ) from None
        if target.trusted:
            if self.allow_private or _routable(parsed):
                return parsed
        elif is_public(parsed):
            return parsed
        raise refuse(
            ImageURLRefused, f"{self.media} URL host {target.host!r} is not a public address", "address"
        )


def _parse_host(raw: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    if bracketed:
        v6 = parse_ipv6(raw)
        return v6.compressed, v6
    host = raw.lower()
    v4 = parse_ipv4(host)
    if v4 is not None:
        return str(v4), v4
    name = normalise_hostname(host)
    # IDNA folds unicode full stops and enclosed digits to ASCII ("127。0。0。1", "①②⑦.⓪.⓪.①"):
    # what comes out numeric is an address literal, never a name for DNS.
    v4 = parse_ipv4(name)
    return (str(v4), v4) if v4 is not None else (name, None)


def _routable(address: IPAddress) -> bool:
    """Unicast and specified: what even a trusted host may resolve to."""
    inner = unwrap(address)
    return not (inner.is_unspecified or inner.is_multicast or str(inner) == "255.255.255.255")


def _split_allowlist_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    try:
        parts = urlsplit(f"http://{entry}")
        port = parts.port
        host, _ = _parse_host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    except ValueError as exc:
        raise ValueError(f"GATEWAY_IMAGE_URL_ALLOWLIST: bad entry {entry!r}: {exc}") from None
    return host, port
