"""The image quality pre-check: documented precision/recall on the generated set, hints, refusals."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from gateway.errors import ImageQualityTooLow, ImageUndecodable
from gateway.images.quality import QualityThresholds, check_quality, check_quality_async
from gateway.settings import Settings
from tests.images import photo_jpeg, png_bytes

ROOT = Path(__file__).resolve().parents[3]
# What docs/precheck.md promises for the default thresholds on bench/precheck.py's set.
DOCUMENTED_MIN = {
    "ok": (0.98, 1.0),  # (precision, recall): no normal photo or document refused
    "too_dark": (1.0, 1.0),
    "too_bright": (1.0, 0.97),
    "blurry": (1.0, 1.0),
    "too_small": (1.0, 1.0),
}


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_precheck", ROOT / "bench" / "precheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_precheck"] = module
    spec.loader.exec_module(module)
    return module


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def _photo() -> Image.Image:
    return Image.open(io.BytesIO(photo_jpeg(1024, 768, seed=3)))


@pytest.mark.slow
def test_default_thresholds_meet_the_documented_precision_and_recall() -> None:
    bench = _bench()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    thresholds = QualityThresholds.from_settings(settings)
    assert thresholds == QualityThresholds()  # the documented defaults are the settings' defaults
    scores = bench.score(list(bench.samples(40)), thresholds)
    for label, (precision, recall) in DOCUMENTED_MIN.items():
        assert scores[label].precision >= precision, (label, scores[label])
        assert scores[label].recall >= recall, (label, scores[label])


@pytest.mark.parametrize(
    ("make", "reason", "hint_part"),
    [
        (lambda img: ImageEnhance.Brightness(img).enhance(0.1), "too_dark", "光线太暗"),
        (lambda img: ImageEnhance.Brightness(img).enhance(4.5), "too_bright", "too bright"),
        (lambda img: img.filter(ImageFilter.GaussianBlur(4)), "blurry", "blurred"),
        (lambda img: img.resize((48, 36)), "too_small", "too small"),
    ],
)
def test_bad_photos_are_refused_with_a_bilingual_hint(make, reason: str, hint_part: str) -> None:
    with pytest.raises(ImageQualityTooLow) as caught:
        check_quality(_jpeg(make(_photo())), QualityThresholds())
    err = caught.value
    assert err.code == 40009
    assert err.reason == reason
    assert hint_part in err.hint and " / " in err.hint


def test_a_sharp_photo_passes_in_any_format() -> None:
    check_quality(photo_jpeg(1280, 960, seed=5), QualityThresholds())
    out = io.BytesIO()
    _photo().save(out, "PNG")
    check_quality(out.getvalue(), QualityThresholds())


def test_source_size_counts_for_an_image_intake_upscaled() -> None:
    data = photo_jpeg(640, 480, seed=2)
    with pytest.raises(ImageQualityTooLow) as caught:
        check_quality(data, QualityThresholds(), source_size=(40, 30))
    assert caught.value.reason == "too_small"


def test_thresholds_come_from_settings() -> None:
    settings = Settings(_env_file=None, precheck_dark_threshold=1, precheck_blur_threshold=0)  # type: ignore[call-arg]
    dark = _jpeg(ImageEnhance.Brightness(_photo()).enhance(0.1))
    check_quality(dark, QualityThresholds.from_settings(settings))  # 1 is darker than any photo


def test_flat_colour_is_blurry_and_garbage_is_undecodable() -> None:
    with pytest.raises(ImageQualityTooLow):
        check_quality(png_bytes(400, 300, (120, 120, 120)), QualityThresholds())
    with pytest.raises(ImageUndecodable):
        check_quality(b"not an image", QualityThresholds())


async def test_async_wrapper_runs_off_the_loop() -> None:
    with pytest.raises(ImageQualityTooLow):
        await check_quality_async(_jpeg(ImageEnhance.Brightness(_photo()).enhance(0.1)), QualityThresholds())
    await check_quality_async(photo_jpeg(seed=4), QualityThresholds())
