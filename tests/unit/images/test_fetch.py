"""Fetching image URLs from a real loopback server: success, caps, deadlines, bad answers."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from gateway.errors import ImageFetchFailed, ImageUndecodable, PayloadTooLarge
from gateway.images import ImageIntake
from tests.unit.images import factory
from tests.unit.images.httpd import Httpd, redirect, reply, stall, trickle

PHOTO = factory.photo(320, 240)


@pytest.fixture
def intake(httpd: Httpd, make_intake: Callable[..., ImageIntake]) -> ImageIntake:
    return make_intake(
        image_allow_private_urls=True,
        image_allowed_ports=[httpd.port],
        image_fetch_timeout=0.5,
        image_max_bytes=64 * 1024,
    )


async def test_fetch_and_same_hash_as_base64(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/cat.jpg"] = reply(body=PHOTO)
    [fetched] = await intake.prepare([f"{httpd.origin}/cat.jpg?size=large"])
    [inline] = await intake.prepare([base64.b64encode(PHOTO).decode()])
    assert fetched.source == "url" and inline.source == "base64"
    assert fetched.sha256 == inline.sha256
    assert fetched.data == PHOTO  # clean and within budget: passed through byte for byte
    path, headers = httpd.requests[0]
    assert path == "/cat.jpg?size=large"
    assert headers["host"] == f"127.0.0.1:{httpd.port}"
    assert headers["accept-encoding"] == "identity"


async def test_relative_redirects_followed(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/old"] = redirect("/older", 301)
    httpd.routes["/older"] = redirect(f"{httpd.origin}/cat.jpg", 308)
    httpd.routes["/cat.jpg"] = reply(body=PHOTO)
    [image] = await intake.prepare([f"{httpd.origin}/old"])
    assert image.data == PHOTO
    assert [p for p, _ in httpd.requests] == ["/old", "/older", "/cat.jpg"]


async def test_too_many_redirects(httpd: Httpd, intake: ImageIntake) -> None:
    for hop in range(5):
        httpd.routes[f"/r{hop}"] = redirect(f"/r{hop + 1}")
    httpd.routes["/r5"] = reply(body=PHOTO)
    with pytest.raises(ImageFetchFailed, match="redirected more than 3 times") as caught:
        await intake.prepare([f"{httpd.origin}/r0"])
    assert caught.value.reason == "redirects"
    assert len(httpd.requests) == 4  # the first request and 3 redirects followed


async def test_redirect_without_location(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/r"] = reply(302, b"", None)
    with pytest.raises(ImageFetchFailed, match="302"):
        await intake.prepare([f"{httpd.origin}/r"])


async def test_not_found(httpd: Httpd, intake: ImageIntake) -> None:
    with pytest.raises(ImageFetchFailed, match="HTTP 404") as caught:
        await intake.prepare([f"{httpd.origin}/missing.jpg"])
    assert caught.value.code == 40004 and caught.value.reason == "status"


async def test_wrong_content_type(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/page"] = reply(body=b"<html>hi</html>", content_type="text/html; charset=utf-8")
    with pytest.raises(ImageFetchFailed, match="text/html") as caught:
        await intake.prepare([f"{httpd.origin}/page"])
    assert caught.value.reason == "content_type"


async def test_missing_content_type(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/x"] = reply(body=PHOTO, content_type=None)
    with pytest.raises(ImageFetchFailed, match="content type"):
        await intake.prepare([f"{httpd.origin}/x"])


async def test_octet_stream_accepted_magic_decides(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/s3.jpg"] = reply(body=PHOTO, content_type="binary/octet-stream")
    httpd.routes["/s3.txt"] = reply(body=b"hello", content_type="application/octet-stream")
    [image] = await intake.prepare([f"{httpd.origin}/s3.jpg"])
    assert image.mime == "image/jpeg"
    with pytest.raises(ImageUndecodable):
        await intake.prepare([f"{httpd.origin}/s3.txt"])


async def test_compressed_body_refused(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/gz"] = reply(body=b"\x1f\x8b...", headers={"Content-Encoding": "gzip"})
    with pytest.raises(ImageFetchFailed, match="gzip"):
        await intake.prepare([f"{httpd.origin}/gz"])


async def test_body_cap_without_content_length(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/big"] = reply(body=b"\xff" * 200_000, length=None)
    with pytest.raises(PayloadTooLarge) as caught:
        await intake.prepare([f"{httpd.origin}/big"])
    assert caught.value.code == 41301 and caught.value.reason == "bytes"


async def test_body_cap_with_chunked_encoding(httpd: Httpd, intake: ImageIntake) -> None:
    chunk = b"\xff" * 10_000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    httpd.routes["/chunked"] = reply(body=chunked, length=None, headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(PayloadTooLarge):
        await intake.prepare([f"{httpd.origin}/chunked"])


async def test_declared_length_over_cap_refused_before_reading(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/huge"] = reply(body=b"", length=40 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="41943040 bytes"):
        await intake.prepare([f"{httpd.origin}/huge"])


async def test_lying_short_content_length_reads_no_more(httpd: Httpd, intake: ImageIntake) -> None:
    """A Content-Length smaller than the body: only the declared bytes are read (truncated image)."""
    httpd.routes["/liar"] = reply(body=PHOTO + b"\x00" * 100_000, length=1000)
    assert len(await intake.fetcher.fetch(f"{httpd.origin}/liar")) == 1000
    with pytest.raises(ImageUndecodable) as caught:
        await intake.prepare([f"{httpd.origin}/liar"])
    assert caught.value.reason == "truncated"


async def test_lying_long_content_length(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/short"] = reply(body=PHOTO[:500], length=len(PHOTO))
    with pytest.raises(ImageFetchFailed) as caught:
        await intake.prepare([f"{httpd.origin}/short"])
    assert caught.value.reason == "network"


async def test_deadline_on_silent_server(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/silent"] = stall(5)
    with pytest.raises(ImageFetchFailed, match="timed out") as caught:
        await intake.prepare([f"{httpd.origin}/silent"])
    assert caught.value.reason == "timeout"


async def test_deadline_covers_a_slow_drip_body(httpd: Httpd, intake: ImageIntake) -> None:
    """Each chunk arrives well within any per-read timeout; the total deadline still ends it."""
    httpd.routes["/drip"] = trickle(b"\xff\xd8", delay=0.05)
    with pytest.raises(ImageFetchFailed, match="timed out"):
        await intake.prepare([f"{httpd.origin}/drip"])


async def test_deadline_covers_redirect_chain(httpd: Httpd, intake: ImageIntake) -> None:
    httpd.routes["/r"] = redirect("/silent")
    httpd.routes["/silent"] = stall(5)
    with pytest.raises(ImageFetchFailed, match="timed out"):
        await intake.prepare([f"{httpd.origin}/r"])


async def test_connection_refused(make_intake: Callable[..., ImageIntake]) -> None:
    from tests.servers import free_port

    port = free_port()
    intake = make_intake(image_allow_private_urls=True, image_allowed_ports=[port])
    with pytest.raises(ImageFetchFailed, match="could not connect") as caught:
        await intake.prepare([f"http://127.0.0.1:{port}/x.jpg"])
    assert caught.value.reason == "connect"
