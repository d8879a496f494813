"""Presets, feedback, usage and the pre-check end to end: real gateway, emulator and keys.

Until the lead wires ``services.devex`` and registers the routes in ``create_app``,
:func:`attach_devex` registers them on the test's app and opens a DevEx in a start-up hook; once
wired it does nothing. Tests that need the app route to record requests, count usage or run
the pre-check are skipped until then (``needs_wiring``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from PIL import Image, ImageEnhance

from gateway.app import create_app
from gateway.devex import open_devex
from gateway.serving.services import Services
from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import GatewayUnderTest, create_key, emulator_stats, gateway_settings
from tests.servers import ThreadedServer

WIRED = "devex" in {f.name for f in dataclasses.fields(Services)}
needs_wiring = pytest.mark.skipif(not WIRED, reason="needs services.devex wired into the app route (issue 9)")
SHIPPED = ["describe", "describe_video", "identify_object", "moderate", "ocr", "receipt", "ui_screenshot"]


def attach_devex(app: Litestar) -> Litestar:
    """Open a DevEx, unless create_app already does (the devex plugin installs the routes)."""
    if not WIRED:
        stack = AsyncExitStack()

        async def start() -> None:
            services = app.state.services
            services.devex = await stack.enter_async_context(open_devex(services.settings, services.redis))

        app.on_startup.append(start)
        app.on_shutdown.insert(0, stack.aclose)
    return app


@pytest.fixture
def devex_gateway(tmp_path: Path, emulator: ThreadedServer) -> Iterator[Callable[..., GatewayUnderTest]]:
    started: list[GatewayUnderTest] = []

    def factory(**overrides: Any) -> GatewayUnderTest:
        settings = gateway_settings([emulator.url], tmp_path, **overrides)
        gw = GatewayUnderTest(ThreadedServer(attach_devex(create_app(settings))).start(), settings, None)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.client.close()
        gw.server.stop()


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_presets_list_what_the_key_may_use(devex_gateway, tmp_path) -> None:
    gw = devex_gateway(auth_disabled=False)
    every, ocr_only = create_key(tmp_path, "app-a"), create_key(tmp_path, "app-ocr", "--preset", "ocr")
    listed = gw.client.get("/v1/presets", headers=auth(every))
    assert listed.status_code == 200, listed.text
    presets = listed.json()["presets"]
    assert [p["name"] for p in presets] == SHIPPED
    identify = next(p for p in presets if p["name"] == "identify_object")
    assert identify["description"] and identify["version"] == "1" and identify["prompt_required"] is False
    assert "template" not in identify and "system" not in identify  # the prompts stay the operator's
    assert [p["name"] for p in gw.client.get("/v1/presets", headers=auth(ocr_only)).json()["presets"]] == [
        "ocr"
    ]
    assert gw.client.get("/v1/presets").json()["code"] == 40101


def test_feedback_refuses_bad_bodies_and_unknown_requests(devex_gateway, tmp_path) -> None:
    gw = devex_gateway(auth_disabled=False)
    key = create_key(tmp_path, "app-a")
    bad = gw.client.post("/v1/feedback", json={"request_id": "x", "verdict": "meh"}, headers=auth(key))
    assert bad.status_code == 400 and bad.json()["code"] == 40001 and bad.json()["param"] == "verdict"
    long = gw.client.post("/v1/feedback", json={"request_id": "x", "verdict": "bad", "comment": "x" * 2001},
                          headers=auth(key))  # fmt: skip
    assert long.json()["code"] == 40001 and long.json()["param"] == "comment"
    unknown = gw.client.post("/v1/feedback", json={"request_id": "nope", "verdict": "bad"}, headers=auth(key))
    assert unknown.status_code == 404 and unknown.json()["code"] == 40401
    assert gw.client.post("/v1/feedback", json={"request_id": "x", "verdict": "bad"}).json()["code"] == 40101


def test_usage_has_one_row_per_day(devex_gateway, tmp_path) -> None:
    gw = devex_gateway(auth_disabled=False)
    key = create_key(tmp_path, "app-a")
    report = gw.client.get("/v1/usage", params={"days": 3}, headers=auth(key)).json()
    assert report["key"] == "app-a" and report["code"] == 0
    assert [day["date"] for day in report["days"]][-1] == dt.datetime.now(dt.UTC).date().isoformat()
    assert set(report["days"][0]) == {
        "date",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cache_hits",
        "errors",
    }
    assert len(gw.client.get("/v1/usage", headers=auth(key)).json()["days"]) == 7
    assert gw.client.get("/v1/usage", params={"days": 0}, headers=auth(key)).json()["code"] == 40007
    assert gw.client.get("/v1/usage", params={"days": "x"}, headers=auth(key)).json()["code"] == 40001


def _dark_photo() -> str:
    out = io.BytesIO()
    ImageEnhance.Brightness(Image.open(io.BytesIO(photo_jpeg(seed=7)))).enhance(0.1).save(out, "JPEG")
    return data_uri(out.getvalue())


@needs_wiring
def test_feedback_round_trip_export_and_usage(devex_gateway, tmp_path) -> None:
    gw = devex_gateway(auth_disabled=False)
    key, other = create_key(tmp_path, "app-a"), create_key(tmp_path, "app-b")
    answer = gw.ask({"image": data_uri(photo_jpeg()), "preset": "identify_object"}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    request_id = answer.json()["request_id"]
    body = {"request_id": request_id, "verdict": "bad", "comment": "识别有误", "expected": "吊兰"}
    assert gw.client.post("/v1/feedback", json=body, headers=auth(other)).json()["code"] == 40401
    accepted = gw.client.post("/v1/feedback", json=body, headers=auth(key))
    assert accepted.status_code == 200 and accepted.json()["code"] == 0, accepted.text

    out = tmp_path / "feedback.jsonl"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    subprocess.run(
        [sys.executable, "-m", "gateway.cli.feedback", "export", "--since", today, "--out", str(out)],
        env={"GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True, timeout=30,
    )  # fmt: skip
    (line,) = [json.loads(text) for text in out.read_text().splitlines()]
    assert line["request_id"] == request_id and line["key_name"] == "app-a" and line["expected"] == "吊兰"
    assert line["request"]["answer"] == answer.json()["text"]
    assert line["request"]["preset"] == "identify_object" and len(line["request"]["image_sha256"]) == 1

    today_usage = gw.client.get("/v1/usage", params={"days": 1}, headers=auth(key)).json()["days"][-1]
    assert today_usage["requests"] >= 1 and today_usage["completion_tokens"] > 0


@needs_wiring
def test_precheck_refusal_costs_no_upstream_call(devex_gateway, emulator) -> None:
    gw = devex_gateway()
    refused = gw.ask({"image": _dark_photo(), "preset": "identify_object"})
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"] == 40009 and body["reason"] == "too_dark" and "光线太暗" in body["hint"]
    assert emulator_stats(emulator)["chat_requests"] == 0
    # The request can switch the pre-check off; presets without it do not check.
    assert gw.ask({"image": _dark_photo(), "preset": "identify_object", "precheck": False}).status_code == 200
    assert gw.ask({"image": _dark_photo(), "prompt": "what is this?"}).status_code == 200


@needs_wiring
def test_unknown_and_forbidden_presets(devex_gateway, tmp_path) -> None:
    gw = devex_gateway(auth_disabled=False)
    key = create_key(tmp_path, "app-ocr", "--preset", "ocr")
    unknown = gw.ask({"image": data_uri(photo_jpeg()), "preset": "nope"}, headers=auth(key)).json()
    assert unknown["code"] == 40008 and "identify_object" in unknown["message"]
    assert (
        gw.ask({"image": data_uri(photo_jpeg()), "preset": "receipt"}, headers=auth(key)).json()["code"]
        == 40301
    )
