"""DevEx: feedback tied to the key that asked, usage by day, pre-check choice, store outages."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from gateway import errors
from gateway.auth import Principal
from gateway.devex import DevEx, FeedbackBody, RequestRecord, open_devex
from gateway.images import PreparedImage
from gateway.settings import Settings
from gateway.store import EmbeddedDB
from gateway.store.redis import ResilientRedis
from tests.images import photo_jpeg
from tests.servers import RedisServer
from tests.unit.store.helpers import own_redis, resilient, wait_recovered


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[call-arg]


@pytest.fixture(params=["embedded", "redis"])
async def devex(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DevEx]:
    redis: ResilientRedis | None = None
    if request.param == "redis":
        redis = resilient(request.getfixturevalue("redis_url"), timeout=2.0)
    async with open_devex(settings(tmp_path), redis=redis) as dx:
        yield dx
    if redis is not None:
        await redis.aclose()


def answered(request_id: str = "req-1", key_name: str = "app-a") -> RequestRecord:
    return RequestRecord(
        request_id=request_id, key_name=key_name, route="/v1/qwen-vl", prompt=None,
        answer="绿萝。一种常见的室内观叶植物。", model="qwen3-vl", image_sha256=["cd" * 32],
        preset="identify_object", preset_version="1",
    )  # fmt: skip


async def test_feedback_round_trip_and_export(devex: DevEx) -> None:
    devex.record_request(answered())
    body = FeedbackBody(request_id="req-1", verdict="bad", comment="识别有误", expected="吊兰")
    stored = await devex.submit_feedback("app-a", body)
    assert stored.id and stored.request is not None and stored.request.preset == "identify_object"
    exported = [e async for e in devex.feedback_between(time.time() - 60, time.time() + 60)]
    assert len(exported) == 1
    line = exported[0].export_line()
    assert b'"expected":"\xe5\x90\x8a\xe5\x85\xb0"' in line and b'"created_at":"' in line
    assert b'"images_b64"' not in line  # image bytes only when the operator opts in


async def test_feedback_on_a_foreign_or_unknown_request_is_40401(devex: DevEx) -> None:
    devex.record_request(answered())
    with pytest.raises(errors.NotFound):
        await devex.submit_feedback("app-b", FeedbackBody(request_id="req-1", verdict="good"))
    with pytest.raises(errors.NotFound):
        await devex.submit_feedback("app-a", FeedbackBody(request_id="nope", verdict="good"))


async def test_usage_by_day_with_errors_and_cache_hits(devex: DevEx) -> None:
    devex.record_usage("app-a", code=0, usage=(100, 20), cached=False)
    devex.record_usage("app-a", code=0, usage=(100, 20), cached=True)
    devex.record_usage("app-a", code=40001, usage=None, cached=False)
    devex.record_usage("app-a", code=42901, usage=None, cached=False)
    devex.record_usage("app-b", code=0, usage=(1, 1), cached=False)
    report = await devex.usage_report("app-a", 3)
    assert report.key == "app-a" and len(report.days) == 3
    assert [d.requests for d in report.days[:2]] == [0, 0]
    today = report.days[-1]
    assert today.date == time.strftime("%Y-%m-%d", time.gmtime())
    assert (today.requests, today.prompt_tokens, today.completion_tokens, today.cache_hits) == (4, 200, 40, 1)
    assert today.errors == {"40001": 1, "42901": 1}
    with pytest.raises(errors.ParameterOutOfRange):
        await devex.usage_report("app-a", 0)


async def test_image_bytes_are_kept_only_when_opted_in(tmp_path: Path) -> None:
    async with open_devex(settings(tmp_path, feedback_store_images=True)) as devex:
        devex.record_request(answered(), images=[b"\xff\xd8jpeg"])
        entry = await devex.submit_feedback("app-a", FeedbackBody(request_id="req-1", verdict="bad"))
    assert entry.request is not None and entry.request.images_b64 == [
        base64.b64encode(b"\xff\xd8jpeg").decode()
    ]


async def test_redis_down_never_fails_the_hot_path_and_loses_no_usage(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    redis = resilient(own_redis.url, timeout=0.2)
    async with open_devex(settings(tmp_path), redis=redis) as devex:
        own_redis.stop()
        devex.record_request(answered())  # returns at once; the failed write is counted, not raised
        devex.record_usage("app-a", code=0, usage=(10, 5), cached=False)
        await devex.recorder.settled()
        await devex.recorder.flush_usage()  # fails; the counts stay buffered
        with pytest.raises(errors.ServiceUnavailable) as caught:
            await devex.submit_feedback("app-a", FeedbackBody(request_id="req-1", verdict="good"))
        assert caught.value.retry_after is not None
        own_redis.start()
        await wait_recovered(redis)
        report = await devex.usage_report("app-a", 1)
        assert report.days[-1].requests == 1 and report.days[-1].prompt_tokens == 10
    await redis.aclose()


async def test_usage_is_flushed_in_the_background(tmp_path: Path) -> None:
    db = EmbeddedDB.in_dir(tmp_path)
    async with open_devex(settings(tmp_path), db=db) as devex:
        devex.record_usage("app-a", code=0, usage=(3, 4), cached=False)
        deadline = time.monotonic() + 5
        while not await devex.store.get_usage("app-a", [time.strftime("%Y-%m-%d", time.gmtime())]):
            assert time.monotonic() < deadline
            await _sleep(0.05)
    db.close()


def _prepared(data: bytes, size: tuple[int, int]) -> PreparedImage:
    return PreparedImage(
        data=data, mime="image/jpeg", sha256="00", width=size[0], height=size[1], source_width=size[0],
        source_height=size[1], source_bytes=len(data), visual_tokens=100, source="base64",
    )  # fmt: skip


async def test_precheck_choice_and_refusal(tmp_path: Path) -> None:
    async with open_devex(settings(tmp_path)) as devex:
        identify = devex.presets.get("identify_object")
        describe = devex.presets.get("describe")
        assert devex.precheck_wanted(None, identify) is True
        assert devex.precheck_wanted(None, describe) is False
        assert devex.precheck_wanted(None, None) is False  # GATEWAY_PRECHECK_DEFAULT
        assert devex.precheck_wanted(False, identify) is False
        good = photo_jpeg(seed=9)
        dark_img = ImageEnhance.Brightness(Image.open(io.BytesIO(good))).enhance(0.1)
        out = io.BytesIO()
        dark_img.save(out, "JPEG")
        await devex.precheck([_prepared(good, (1024, 768))])
        with pytest.raises(errors.ImageQualityTooLow) as caught:
            await devex.precheck([_prepared(good, (1024, 768)), _prepared(out.getvalue(), (1024, 768))])
        assert caught.value.message.startswith("image 2:") and caught.value.reason == "too_dark"


async def test_resolve_preset_checks_the_key(tmp_path: Path) -> None:
    async with open_devex(settings(tmp_path)) as devex:
        limited = Principal(name="a", key_id="k", presets=("ocr",))
        assert devex.resolve_preset(limited, None) is None
        assert devex.resolve_preset(limited, "ocr") is not None
        with pytest.raises(errors.Forbidden):
            devex.resolve_preset(limited, "receipt")
        with pytest.raises(errors.UnknownPreset):
            devex.resolve_preset(limited, "nope")


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


__all__ = ["own_redis"]
