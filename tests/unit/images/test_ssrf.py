"""Hostile image URLs: each refused with 40003, and a loopback canary sees no connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from gateway.errors import ImageFetchFailed, ImageURLRefused
from gateway.images import ImageIntake, system_resolve
from tests.unit.images import factory
from tests.unit.images.conftest import FakeDNS
from tests.unit.images.httpd import Canary, Httpd, redirect, reply

PUBLIC_IP = "93.184.215.14"

# "{p}" is the canary's port, which the settings allow, so only the address rule can stop these.
HOSTILE = [
    "http://127.0.0.1:{p}/x.jpg",
    "http://2130706433:{p}/",  # decimal
    "http://0x7f000001:{p}/",  # hex
    "http://0X7F000001:{p}/",
    "http://0177.0.0.1:{p}/",  # octal
    "http://017700000001:{p}/",  # octal, one part
    "http://0x7f.0x0.0x0.0x1:{p}/",
    "http://0x7f.1:{p}/",
    "http://127.1:{p}/",  # short forms
    "http://127.0.1:{p}/",
    "http://127.0.0.1.:{p}/",  # trailing dot
    "http://[::ffff:127.0.0.1]:{p}/",  # IPv4-mapped
    "http://[::ffff:7f00:1]:{p}/",
    "http://[64:ff9b::7f00:1]:{p}/",  # NAT64
    "http://[2002:7f00:1::]:{p}/",  # 6to4
    "http://[::127.0.0.1]:{p}/",  # IPv4-compatible (deprecated)
    "http://[::1]:{p}/",
    "http://[::]:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0:{p}/",
    "http://[fe80::1%25lo]:{p}/",  # link-local with a zone
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://168.63.129.16/machine",
    "http://192.0.0.192/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[ff02::1]/",
    "http://localhost:{p}/",
    "http://LOCALHOST.:{p}/",
    "http://img.localhost:{p}/",
    "http://loop.example:{p}/",  # DNS says 127.0.0.1
    "http://mixed.example:{p}/",  # DNS says one public and one loopback address
    "http://metadata.google.internal/computeMetadata/v1/",  # DNS says 169.254.169.254
    "http://mapped.example:{p}/",  # DNS says ::ffff:127.0.0.1
    "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_SET%20a%20b",
    "ftp://127.0.0.1:{p}/x.jpg",
    "dict://127.0.0.1:{p}/info",
    "//127.0.0.1:{p}/x.jpg",  # scheme-relative
    "http://user@127.0.0.1:{p}/",
    "http://user:pass@images.example/x.jpg",
    "http://user@images.example/x.jpg",
    "http://images.example@127.0.0.1:{p}/",
    "http://images.example:8080/x.jpg",  # non-default ports
    "https://images.example:6379/x.jpg",
    "http://127.0.0.1:6379/",
    "http://127.0.0.1\\@images.example/",
    "http://1.2.3.4.5/",  # numeric, but no address
    "http://256.0.0.1/",
    "http://08.0.0.1/",
]

DNS = {
    "loop.example": ["127.0.0.1"],
    "mixed.example": [PUBLIC_IP, "127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "images.example": [PUBLIC_IP],
}


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_url_refused_without_connecting(
    url: str, canary: Canary, make_intake: Callable[..., ImageIntake]
) -> None:
    intake = make_intake(resolver=FakeDNS(DNS), image_allowed_ports=[80, 443, canary.port])
    with pytest.raises(ImageURLRefused) as caught:
        await intake.prepare([url.format(p=canary.port)])
    assert caught.value.code == 40003
    assert caught.value.reason in {"scheme", "credentials", "port", "host", "address"}
    assert canary.connections == 0


def test_table_is_large() -> None:
    assert len(HOSTILE) >= 30


async def test_redirect_to_private_refused(
    httpd: Httpd, canary: Canary, make_intake: Callable[..., ImageIntake]
) -> None:
    """The first hop is allowlisted (a real loopback origin); the hops it points to are not."""
    httpd.routes["/a"] = redirect("/b")
    httpd.routes["/b"] = redirect(f"http://127.0.0.1:{canary.port}/secret")
    httpd.routes["/redis"] = redirect("http://127.0.0.1:6379/")
    httpd.routes["/decimal"] = redirect(f"http://2130706433:{canary.port}/")
    httpd.routes["/name"] = redirect(f"http://loop.example:{canary.port}/")
    intake = make_intake(
        resolver=FakeDNS(DNS),
        image_url_allowlist=[f"127.0.0.1:{httpd.port}"],
        image_allowed_ports=[80, 443, canary.port],
    )
    for path in ("/a", "/redis", "/decimal", "/name"):
        with pytest.raises(ImageURLRefused):
            await intake.prepare([f"{httpd.origin}{path}"])
    assert [p for p, _ in httpd.requests] == ["/a", "/b", "/redis", "/decimal", "/name"]
    assert canary.connections == 0


async def test_allowlisted_origin_serves(httpd: Httpd, make_intake: Callable[..., ImageIntake]) -> None:
    httpd.routes["/ok.jpg"] = reply(body=factory.photo(64, 48))
    intake = make_intake(image_url_allowlist=[f"127.0.0.1:{httpd.port}"])
    [image] = await intake.prepare([f"{httpd.origin}/ok.jpg"])
    assert (image.width, image.height) == (64, 48)


class Body(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


class RebindingDNS(FakeDNS):
    """Answers a public address first and loopback ever after (TTL 0 rebinding)."""

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        return [PUBLIC_IP] if len(self.lookups) == 1 else ["127.0.0.1"]


async def test_dns_rebinding_cannot_switch_the_connection(
    canary: Canary, make_intake: Callable[..., ImageIntake]
) -> None:
    """One lookup per hop, and the connection goes to the address that was checked.

    The public internet is out of reach in tests, so the transport is a mock that records where
    the request was sent; everything before it (policy, resolver, request building) is real.
    """
    seen: list[httpx.Request] = []
    body = factory.photo(64, 48)

    def transport(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=Body(body), headers={"content-type": "image/jpeg"})

    dns = RebindingDNS()
    async with httpx.AsyncClient(transport=httpx.MockTransport(transport)) as http:
        intake = make_intake(resolver=dns, http=http, image_allowed_ports=[80, 443, canary.port])
        [image] = await intake.prepare([f"https://rebind.example:{canary.port}/cat.jpg"])
        assert image.width == 64
        assert dns.lookups == ["rebind.example"]
        [request] = seen
        assert request.url.host == PUBLIC_IP
        assert request.url.port == canary.port
        assert request.headers["host"] == f"rebind.example:{canary.port}"
        assert request.extensions["sni_hostname"] == "rebind.example"
        # The attacker's second answer (loopback) is what a later lookup would get: refused.
        with pytest.raises(ImageURLRefused):
            await intake.prepare([f"https://rebind.example:{canary.port}/cat.jpg"])
    assert canary.connections == 0


async def test_unresolvable_host_is_a_fetch_failure(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake(resolver=FakeDNS({}))
    with pytest.raises(ImageFetchFailed) as caught:
        await intake.prepare(["https://nowhere.example/x.jpg"])
    assert caught.value.reason == "dns"


async def test_allow_private_opens_loopback(httpd: Httpd, make_intake: Callable[..., ImageIntake]) -> None:
    httpd.routes["/ok.png"] = reply(body=factory.flat(40, 30, "PNG"), content_type="image/png")
    intake = make_intake(
        resolver=system_resolve, image_allow_private_urls=True, image_allowed_ports=[httpd.port]
    )
    [image] = await intake.prepare([f"http://localhost:{httpd.port}/ok.png"])  # real DNS: /etc/hosts
    assert image.mime == "image/png"
