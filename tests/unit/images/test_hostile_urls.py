"""A hostile URL corpus beyond test_ssrf.py, and hostile servers on loopback: each case answers the
contract's code (40003 refused, 40004 failed, 41301 too big), never a 500, and nothing reaches an
address it should not.

Sources: the OWASP SSRF Prevention Cheat Sheet (IP encodings, IPv6 forms, schemes, redirects),
PayloadsAllTheThings "Server Side Request Forgery" (bypasses: dotless/octal/hex, enclosed
alphanumerics, unicode full stops, ``#@`` and ``?@`` confusion, nip.io-style names, cloud
metadata endpoints), and the issue #13 findings (64 KB path, ``Location: http:127.0.0.1/x``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from gateway.errors import GatewayError, ImageFetchFailed, ImageURLRefused, PayloadTooLarge
from gateway.images import ImageIntake
from tests.unit.images import factory
from tests.unit.images.conftest import FakeDNS
from tests.unit.images.httpd import Canary, Httpd, endless, raw, redirect, reply

# Names an attacker controls, all resolving to addresses that must be refused (no public ones:
# nothing in this file may pass the policy and go to the internet).
DNS = {
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "169.254.169.254.nip.io": ["169.254.169.254"],
    "localtest.me": ["127.0.0.1"],
    "v6.example": ["::1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "ula.example": ["fd12:3456::1"],
    "cgnat.example": ["100.64.0.1"],
    "unspecified.example": ["0.0.0.0"],
}

HOSTILE = [
    # encodings of loopback and metadata (PayloadsAllTheThings "Bypass using ...")
    "http://0177.1:{p}/",
    "http://0x7f.0.0.1:{p}/",
    "http://127.000.000.001:{p}/",
    "http://0000.0000.0000.0000:{p}/",
    "http://2852039166/latest/meta-data/",  # 169.254.169.254 as one decimal
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
    "http://[::ffff:0:7f00:1]:{p}/",  # IPv4-translated, outside 2000::/3
    "http://[0000::1]:{p}/",
    "http://[::1%25eth0]:{p}/",
    "http://[fc00::1]/",
    "http://[fe80::a9fe:a9fe]/",
    # unicode dots and enclosed alphanumerics, which IDNA folds to ASCII
    "http://127\u30020\u30020\u30021:{p}/",  # ideographic full stop
    "http://127\uff0e0\uff0e0\uff0e1:{p}/",  # fullwidth full stop
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460:{p}/",  # enclosed digits
    "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{p}/",  # enclosed "localhost"
    "http://LocalHost:{p}/",
    "http://localhost.localdomain.localhost:{p}/",
    # names resolving to private addresses
    "http://127.0.0.1.nip.io:{p}/",
    "http://169.254.169.254.nip.io/latest/meta-data/",
    "http://localtest.me:{p}/",
    "http://v6.example:{p}/",
    "http://mapped.example/",
    "http://ula.example/",
    "http://cgnat.example/",
    "http://unspecified.example:{p}/",
    # parser confusion
    "http://127.0.0.1:{p}#@evil.example/",
    "http://127.0.0.1:{p}?@evil.example/",
    "http://evil.example#@127.0.0.1:{p}/",
    "http://evil.example@@127.0.0.1:{p}/",
    "http://evil.example:80@127.0.0.1:{p}/",
    "http://127.0.0.1%2500.evil.example/",
    "http://127.0.0.1%09:{p}/",
    "http://127.0.0.1\t:{p}/",
    "http://127.0.0.1\n:{p}/",
    "http:\\\\127.0.0.1:{p}/",
    "http:/\\127.0.0.1:{p}/",
    "HTTP://127.0.0.1:{p}/",
    "http://[127.0.0.1]:{p}/",
    "http://" + "a" * 64 + ".example/",  # a label over 63 characters
    "http://" + "a." * 130 + "example/",  # a name over 253 characters
    "http://xn--/",
    "http://xn--zz-zz.example/",  # not valid punycode
    "http://%31%32%37.0.0.1:{p}/",
    # odd ports
    "http://127.0.0.1:0/",
    "http://images.invalid:65536/",
    "http://images.invalid:-1/",
    "http://images.invalid:80abc/",
    "http://images.invalid:22/",
    "http://images.invalid:25/",
    # schemes
    "file://localhost/etc/passwd",
    "FILE:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://anonymous@127.0.0.1/",
    "sftp://127.0.0.1/",
    "tftp://127.0.0.1/x",
    "ldap://127.0.0.1/",
    "dict://127.0.0.1:11211/stats",
    "jar:http://127.0.0.1!/",
    "netdoc:///etc/passwd",
    "php://filter/resource=/etc/passwd",
    "ws://127.0.0.1/",
    "\\\\127.0.0.1\\share\\x.jpg",
    "///127.0.0.1/x.jpg",
    # overlong (httpx refuses over 64 KB with an InvalidURL that used to escape as a 500)
    "http://images.invalid/" + "a" * 70_000,
    "http://images.invalid/?" + "q=1&" * 3000,
]


class Nowhere:
    """An HTTP client transport that records requests and never sends them anywhere."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(599)


@pytest.fixture
async def nowhere() -> AsyncIterator[tuple[Nowhere, httpx.AsyncClient]]:
    record = Nowhere()
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        yield record, client


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_url_refused_without_a_request(
    url: str,
    canary: Canary,
    nowhere: tuple[Nowhere, httpx.AsyncClient],
    make_intake: Callable[..., ImageIntake],
) -> None:
    record, client = nowhere
    intake = make_intake(resolver=FakeDNS(DNS), http=client, image_allowed_ports=[80, 443, canary.port])
    with pytest.raises(GatewayError) as caught:
        await intake.prepare([url.format(p=canary.port)])
    # 40003 refused; 40002 for a string that is no URL at all (read as base64); 40004 only for a
    # name no DNS answers. Never a 5xx, never a request.
    assert caught.value.code in (40002, 40003, 40004), caught.value
    assert record.requests == [] and canary.connections == 0


def test_corpus_is_large() -> None:
    assert len(HOSTILE) >= 60


MALFORMED_LOCATIONS = [
    "http:127.0.0.1/x",  # issue #13: httpx InvalidURL escaped as a 500
    "https:127.0.0.1/x",
    "http:/x",
    "//127.0.0.1:{p}/x",
    "http://[::1",
    "http://[::1]:{p}:/x",
    "http://xn--a.com/",  # invalid IDNA (httpx decodes it and raises)
    "http://\u2024.com/",
    "http://%zz/",
    "/" + "a" * 70_000,
    "http://127.0.0.1:{p}/\r\nX-Injected: 1",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http://user:pass@127.0.0.1:{p}/",
    "http://0:{p}/",
    "http://[::]:{p}/",
    "http://169.254.169.254/latest/meta-data/",
]


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS)
async def test_malformed_or_hostile_redirect(
    location: str, httpd: Httpd, canary: Canary, make_intake: Callable[..., ImageIntake]
) -> None:
    httpd.routes["/r"] = raw(
        b"HTTP/1.1 302 Found\r\nLocation: "
        + location.format(p=canary.port).encode("utf-8", "surrogateescape")
        + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    intake = make_intake(
        resolver=FakeDNS(DNS),
        image_url_allowlist=[f"127.0.0.1:{httpd.port}"],
        image_allowed_ports=[80, 443, canary.port],
    )
    with pytest.raises(GatewayError) as caught:
        await intake.prepare([f"{httpd.origin}/r"])
    assert caught.value.code in (40003, 40004), caught.value
    assert canary.connections == 0


# Hostile servers: (raw response or handler, expected error class, reason)
SERVERS = {
    "huge-headers": (
        raw(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n\r\n"),
        ImageFetchFailed,
        "network",
    ),
    "many-headers": (
        raw(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n"),
        ImageFetchFailed,
        "network",
    ),
    "garbage-status": (raw(b"HTTP/1.1 abc\r\n\r\n"), ImageFetchFailed, "network"),
    "http-0.9": (raw(b"\xff\xd8\xff\xe0 raw bytes, no status line"), ImageFetchFailed, "network"),
    "closes-at-once": (raw(b""), ImageFetchFailed, "network"),
    "negative-length": (
        raw(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: -5\r\n\r\nabc"),
        ImageFetchFailed,
        "network",
    ),
    "chunk-size-overflow": (
        raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"ffffffffffffffffffff\r\nabc\r\n"
        ),
        ImageFetchFailed,
        "network",
    ),
    "length-and-chunked": (
        raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ),
        GatewayError,  # h11 reads it chunked (RFC 9112 6.3): the 3 bytes are no image, 40002
        "format",
    ),
    "endless-body": (endless(), PayloadTooLarge, "bytes"),
    "html-as-image": (
        reply(body=b"<html></html>", content_type="text/html"),
        ImageFetchFailed,
        "content_type",
    ),
    "svg": (reply(body=b"<svg/>", content_type="image/svg+xml"), GatewayError, "format"),
    "gzip-bomb": (
        reply(body=b"\x1f\x8b" + b"\0" * 64, headers={"Content-Encoding": "gzip"}),
        ImageFetchFailed,
        "content_type",
    ),
    "redirect-to-self": (redirect("/server"), ImageFetchFailed, "redirects"),
    "non-ascii-location": (
        raw(b"HTTP/1.1 302 Found\r\nLocation: http://\xff\xfe/\r\nContent-Length: 0\r\n\r\n"),
        GatewayError,
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_hostile_server(name: str, httpd: Httpd, make_intake: Callable[..., ImageIntake]) -> None:
    handler, error, reason = SERVERS[name]
    httpd.routes["/server"] = handler
    intake = make_intake(
        image_allow_private_urls=True, image_allowed_ports=[httpd.port], image_max_bytes=1 << 20
    )
    with pytest.raises(error) as caught:
        await intake.prepare([f"{httpd.origin}/server"])
    assert 40000 <= caught.value.code < 50000, caught.value
    if reason:
        assert caught.value.reason == reason


async def test_a_good_image_still_served_by_the_same_origin(
    httpd: Httpd, make_intake: Callable[..., ImageIntake]
) -> None:
    """The corpus refuses hostile answers, not the origin: a real image from it still works."""
    httpd.routes["/ok.jpg"] = reply(body=factory.photo(64, 48))
    intake = make_intake(image_allow_private_urls=True, image_allowed_ports=[httpd.port])
    [image] = await intake.prepare([f"{httpd.origin}/ok.jpg"])
    assert image.width == 64


async def test_refusal_reason_for_overlong_url(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake()
    with pytest.raises(ImageURLRefused) as caught:
        await intake.prepare(["https://images.invalid/" + "a" * 70_000])
    assert caught.value.reason == "malformed" and "at most 8192" in caught.value.message
