"""SSRF-safe fetching of image URLs.

Each hop is checked by ``UrlPolicy``, its name resolved once (A and AAAA), refused if *any*
address is not public, and the connection made to the checked address itself, with the original
``Host`` header and TLS SNI (certificates are verified against the host name), so a DNS answer
that changes between check and connect (rebinding) cannot redirect it. Redirects are followed by
hand, each hop checked again. The body is streamed under a byte cap whatever Content-Length
says, under one deadline for the whole fetch, DNS and redirects included (and, from the intake,
the wait for a fetch slot).

Foreign errors stop here: every httpx error, an overlong URL, a malformed or non-IDNA
``Location`` (httpx parses it even when not following redirects) becomes 40003 (the URL or
where it leads is malformed) or 40004 (the fetch failed); none escapes as a 500.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Protocol

import httpx

from gateway.errors import ImageFetchFailed, ImageURLRefused, PayloadTooLarge
from gateway.images.addresses import IPAddress
from gateway.images.limits import check_encoded_size, refuse
from gateway.images.urls import Target, UrlPolicy
from gateway.metrics import IMAGE_FETCH_DURATION

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# S3 and friends label objects uploaded without a type like this; the magic bytes decide anyway.
OCTET_STREAM_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
USER_AGENT = "vlgw-image-fetch/1"


class Resolver(Protocol):
    """Resolves a host name to its IP addresses (A and AAAA), as text."""

    async def __call__(self, host: str) -> list[str]: ...


async def system_resolve(host: str) -> list[str]:
    """The default resolver: the event loop's ``getaddrinfo`` (A and AAAA)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def make_client(timeout: float, max_connections: int) -> httpx.AsyncClient:
    """An httpx client fit for fetching: no redirects, no proxies from the environment, no reuse.

    Connections are not kept alive: a pooled connection is keyed by IP, so reuse could carry a
    request for one host name over a TLS session verified for another that shares the address.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        follow_redirects=False,
        trust_env=False,
    )


class Fetcher:
    """Fetches image URLs under the URL policy, a byte cap and a deadline.

    ``media`` ("image", "video") is the content type family accepted (besides octet-stream), sent
    in ``Accept`` and named in messages; ``policy.media`` should match it.
    """

    def __init__(
        self,
        policy: UrlPolicy,
        http: httpx.AsyncClient,
        *,
        resolver: Resolver | None = None,
        timeout: float,
        max_bytes: int,
        max_redirects: int,
        media: str = "image",
    ) -> None:
        self.media = media
        self.policy = policy
        self.http = http
        self.resolve: Resolver = resolver or system_resolve
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects

    async def fetch(self, url: str, *, deadline: float | None = None) -> bytes:
        """The body of ``url``: 40003 when refused, 40004 when it fails, 41301 when too big.

        ``deadline`` (event-loop time) ends the fetch; by default ``timeout`` from now.
        """
        started = time.perf_counter()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await self._fetch(url)
        except TimeoutError:
            raise refuse(
                ImageFetchFailed, f"{self.media} URL timed out after {self.timeout:g}s", "timeout"
            ) from None
        except (httpx.InvalidURL, UnicodeError):  # anything the hops below did not name
            raise refuse(ImageURLRefused, f"{self.media} URL is malformed", "malformed") from None
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:  # TimeoutError: caught above
            raise refuse(
                ImageFetchFailed, f"{self.media} URL fetch failed ({type(exc).__name__})", "network"
            ) from None
        finally:
            IMAGE_FETCH_DURATION.observe(time.perf_counter() - started)

    async def _fetch(self, url: str) -> bytes:
        for _hop in range(self.max_redirects + 1):
            target = self.policy.check(url)
            addresses = await self._addresses(target)
            response = await self._connect(target, addresses)
            try:
                if response.status_code in REDIRECT_STATUSES:
                    url = self._next_hop(response)
                    continue
                return await self._read(response)
            finally:
                await response.aclose()
        raise refuse(
            ImageFetchFailed, f"{self.media} URL redirected more than {self.max_redirects} times", "redirects"
        )

    async def _addresses(self, target: Target) -> list[IPAddress]:
        if target.literal is not None:
            return [target.literal]
        found = await self.resolve(target.host)
        if not found:
            raise refuse(
                ImageFetchFailed, f"{self.media} URL host {target.host!r} could not be resolved", "dns"
            )
        # Every address is checked, not just the one used: a name with one private A record
        # is refused even if a public one comes first.
        return [self.policy.check_address(target, address) for address in found]

    async def _connect(self, target: Target, addresses: list[IPAddress]) -> httpx.Response:
        headers = {
            "Host": target.host_header,
            "Accept": f"{self.media}/*",
            "Accept-Encoding": "identity",  # a compressed body could be a zip bomb under the cap
            "Connection": "close",
            "User-Agent": USER_AGENT,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" and not target.literal else {}
        failure = "could not connect"
        for address in addresses:
            try:
                request = self.http.build_request(
                    "GET", target.url_for(address), headers=headers, extensions=extensions
                )
            except httpx.InvalidURL as exc:
                raise refuse(ImageURLRefused, f"{self.media} URL is malformed: {exc}", "malformed") from None
            try:
                return await self.http.send(request, stream=True, follow_redirects=False)
            except (httpx.InvalidURL, UnicodeError):
                # httpx parses a redirect's Location even when not following it.
                raise refuse(
                    ImageURLRefused, f"{self.media} URL redirected to a malformed URL", "malformed"
                ) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"could not connect ({type(exc).__name__})"
            except httpx.TimeoutException:
                raise refuse(
                    ImageFetchFailed, f"{self.media} URL timed out after {self.timeout:g}s", "timeout"
                ) from None
            except httpx.HTTPError as exc:
                raise refuse(
                    ImageFetchFailed, f"{self.media} URL fetch failed ({type(exc).__name__})", "network"
                ) from None
        raise refuse(ImageFetchFailed, f"{self.media} URL host {target.host!r}: {failure}", "connect")

    def _next_hop(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise refuse(
                ImageFetchFailed,
                f"{self.media} URL answered {response.status_code} without a Location",
                "status",
            )
        # Resolve a relative Location against the URL the client asked for, not the IP URL.
        base = httpx.URL(self._current_url(response))
        try:
            return str(base.join(location))
        except (httpx.InvalidURL, ValueError):  # UnicodeError (IDNA) is a ValueError
            raise refuse(
                ImageURLRefused, f"{self.media} URL redirected to a malformed URL", "malformed"
            ) from None

    @staticmethod
    def _current_url(response: httpx.Response) -> str:
        request = response.request
        host = request.headers["host"]
        return str(request.url.copy_with(netloc=host.encode("ascii")))

    async def _read(self, response: httpx.Response) -> bytes:
        if response.status_code != 200:
            raise refuse(ImageFetchFailed, f"{self.media} URL answered HTTP {response.status_code}", "status")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith(f"{self.media}/") and content_type not in OCTET_STREAM_TYPES:
            shown = content_type or "none"
            raise refuse(
                ImageFetchFailed,
                f"{self.media} URL content type is {shown!r}, not {self.media}/*",
                "content_type",
            )
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise refuse(
                ImageFetchFailed, f"{self.media} URL sent a {encoding!r}-encoded body", "content_type"
            )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit():
            check_encoded_size(int(declared), self.max_bytes, f"{self.media} URL body")
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > self.max_bytes:
                    raise refuse(
                        PayloadTooLarge,
                        f"{self.media} URL body is over {self.max_bytes} bytes; at most that allowed",
                        "bytes",
                    )
        except httpx.TimeoutException:
            raise refuse(
                ImageFetchFailed, f"{self.media} URL timed out after {self.timeout:g}s", "timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise refuse(
                ImageFetchFailed, f"{self.media} URL body could not be read ({type(exc).__name__})", "network"
            ) from None
        return bytes(body)
