"""ImageIntake as the routes use it: one hash per photo whatever the transport, pool, metrics."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.errors import ImageURLRefused
from gateway.images import ImageIntake
from gateway.settings import Settings
from tests.unit.images import factory
from tests.unit.images.conftest import FakeDNS
from tests.unit.images.httpd import Httpd, reply


@pytest.mark.parametrize(
    "photo",
    [
        pytest.param(factory.photo(800, 600), id="clean"),
        pytest.param(factory.photo(800, 600, exif=factory.exif_with(1)), id="with-gps"),
        pytest.param(factory.photo(800, 600, exif=factory.exif_with(6)), id="rotated"),
        pytest.param(factory.photo(3000, 2000), id="over-budget"),
    ],
)
async def test_same_photo_same_hash_over_every_transport(
    photo: bytes, httpd: Httpd, make_intake: Callable[..., ImageIntake]
) -> None:
    httpd.routes["/photo.jpg"] = reply(body=photo)
    intake = make_intake(image_allow_private_urls=True, image_allowed_ports=[httpd.port])
    text = base64.b64encode(photo).decode()
    images = await intake.prepare([f"{httpd.origin}/photo.jpg", f"data:image/jpeg;base64,{text}", text])
    assert [image.source for image in images] == ["url", "data_uri", "base64"]
    assert len({image.sha256 for image in images}) == 1
    assert len({image.data for image in images}) == 1
    assert len({image.data_uri() for image in images}) == 1
    import hashlib

    assert images[0].sha256 == hashlib.sha256(images[0].data).hexdigest()
    assert images[0].source_bytes == len(photo)


async def test_images_keep_their_order(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake()
    sizes = [(64, 48), (48, 64), (100, 100)]
    refs = [base64.b64encode(factory.flat(w, h)).decode() for w, h in sizes]
    images = await intake.prepare(refs)
    assert [(i.width, i.height) for i in images] == sizes
    assert await intake.prepare([]) == []


class CountingPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="test-image")
        self.jobs = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


async def test_pixel_work_runs_in_the_given_pool_and_passthrough_inline() -> None:
    pool = CountingPool()
    intake = ImageIntake(Settings(), resolver=FakeDNS(), executor=pool)
    try:
        # Over the pixel budget: decode + resize + encode, in the pool.
        await intake.prepare([base64.b64encode(factory.flat(2000, 1500)).decode()] * 3)
        assert pool.jobs == 3
        # Small and within budget: a passthrough, cheaper inline than a thread hop.
        await intake.prepare([base64.b64encode(factory.flat(64, 48)).decode()] * 3)
        assert pool.jobs == 3
    finally:
        await intake.aclose()
        pool.shutdown()


async def test_refusals_are_counted_by_reason(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake()

    def count() -> float:
        return REGISTRY.get_sample_value("gateway_image_refusals_total", {"reason": "scheme"}) or 0.0

    before = count()
    with pytest.raises(ImageURLRefused):
        await intake.prepare(["gopher://example.com/"])
    assert count() == before + 1


async def test_metrics_observe_in_and_out(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake()

    def samples(name: str, stage: str | None = None) -> float:
        labels = {"stage": stage} if stage else {}
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = [samples("gateway_image_bytes_count", "in"), samples("gateway_visual_tokens_count")]
    before_px = samples("gateway_image_pixels_sum", "out")
    await intake.prepare([base64.b64encode(factory.flat(4032, 3024)).decode()])
    assert samples("gateway_image_bytes_count", "in") == before[0] + 1
    assert samples("gateway_visual_tokens_count") == before[1] + 1
    assert samples("gateway_image_pixels_sum", "out") == before_px + 1312 * 960


async def test_concurrency_bound_holds(make_intake: Callable[..., ImageIntake]) -> None:
    """More images than slots still all complete (the semaphore queues, it does not refuse)."""
    intake = make_intake(image_max_concurrent=1, image_workers=1, image_max_images=4)
    refs = [base64.b64encode(factory.flat(300 + i, 200)).decode() for i in range(4)]
    images = await intake.prepare(refs)
    assert [i.width for i in images] == [300, 301, 302, 303]
