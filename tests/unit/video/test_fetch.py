"""Video URLs go through the images' SSRF-safe fetcher: the same hostile table, video content types."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ImageFetchFailed, ImageURLRefused, VideoTooLarge
from gateway.video import VideoIntake
from tests.unit.images.conftest import FakeDNS
from tests.unit.images.httpd import Canary, Httpd, redirect, reply
from tests.unit.images.test_ssrf import DNS, HOSTILE
from tests.unit.video import clips


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_video_url_refused_without_connecting(
    url: str, canary: Canary, make_intake: Callable[..., VideoIntake]
) -> None:
    intake = make_intake(resolver=FakeDNS(DNS), image_allowed_ports=[80, 443, canary.port])
    with pytest.raises(ImageURLRefused) as caught:
        await intake.prepare(url.format(p=canary.port))
    assert caught.value.code == 40003
    assert caught.value.message.startswith("video URL")
    assert canary.connections == 0


async def test_redirect_to_private_refused(
    httpd: Httpd, canary: Canary, make_intake: Callable[..., VideoIntake]
) -> None:
    httpd.routes["/a"] = redirect(f"http://127.0.0.1:{canary.port}/clip.mp4")
    intake = make_intake(
        resolver=FakeDNS(DNS),
        image_url_allowlist=[f"127.0.0.1:{httpd.port}"],
        image_allowed_ports=[80, 443, canary.port],
    )
    with pytest.raises(ImageURLRefused):
        await intake.prepare(f"{httpd.origin}/a")
    assert canary.connections == 0


@pytest.mark.parametrize(
    "content_type", ["video/mp4", "video/webm", "video/quicktime", "application/octet-stream"]
)
async def test_video_types_are_fetched(
    content_type: str, httpd: Httpd, make_intake: Callable[..., VideoIntake]
) -> None:
    httpd.routes["/clip"] = reply(body=clips.mp4(), content_type=content_type)
    intake = make_intake(image_url_allowlist=[f"127.0.0.1:{httpd.port}"])
    video = await intake.prepare(f"{httpd.origin}/clip")
    assert (video.source, video.frames) == ("url", 2)


@pytest.mark.parametrize("content_type", ["image/jpeg", "text/html", None])
async def test_other_types_are_a_fetch_failure(
    content_type: str | None, httpd: Httpd, make_intake: Callable[..., VideoIntake]
) -> None:
    httpd.routes["/clip"] = reply(body=clips.mp4(), content_type=content_type)
    intake = make_intake(image_url_allowlist=[f"127.0.0.1:{httpd.port}"])
    with pytest.raises(ImageFetchFailed) as caught:
        await intake.prepare(f"{httpd.origin}/clip")
    assert caught.value.reason == "content_type"
    assert "video/*" in caught.value.message


@pytest.mark.parametrize("declared", [True, False])
async def test_body_over_the_video_byte_limit(
    declared: bool, httpd: Httpd, make_intake: Callable[..., VideoIntake]
) -> None:
    body = clips.mp4(frames=60)
    httpd.routes["/big"] = reply(body=body, content_type="video/mp4", length="auto" if declared else None)
    intake = make_intake(image_url_allowlist=[f"127.0.0.1:{httpd.port}"], video_max_bytes=len(body) - 1)
    with pytest.raises(VideoTooLarge) as caught:
        await intake.prepare(f"{httpd.origin}/big")
    assert caught.value.reason == "bytes"
