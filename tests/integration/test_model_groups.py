"""Model groups through a real gateway: two emulators serving different models, routed by name and
alias on both routes, listed per key, isolated per key (40301), unknown names 404."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.emulator import EmulatorConfig, create_emulator_app
from tests.images import bare_b64, png_bytes
from tests.integration.conftest import create_key, emulator_stats
from tests.servers import ThreadedServer, serve


@pytest.fixture
def two_models() -> Iterator[tuple[ThreadedServer, ThreadedServer]]:
    with (
        serve(create_emulator_app(EmulatorConfig(model="qwen3-vl-8b"))) as small,
        serve(create_emulator_app(EmulatorConfig(model="qwen3-vl-8b-fp8"))) as fp8,
    ):
        yield small, fp8


def groups(small: ThreadedServer, fp8: ThreadedServer) -> list[dict[str, object]]:
    return [
        {"model": "qwen3-vl-8b", "urls": [small.url], "aliases": ["qwen-vl"]},
        {"model": "qwen3-vl-8b-fp8", "urls": [fp8.url], "aliases": ["qwen-vl-fp8"]},
    ]


def test_requests_reach_the_group_they_name(two_models, make_gateway) -> None:
    small, fp8 = two_models
    gw = make_gateway([small.url], model_groups=groups(small, fp8), cache_enabled=False)
    image = bare_b64(png_bytes())
    default = gw.ask({"image": image, "prompt": "hi"})
    assert default.status_code == 200 and default.json()["model"] == "qwen3-vl-8b"
    by_alias = gw.ask({"image": image, "prompt": "hi", "model": "qwen-vl-fp8"})
    assert by_alias.status_code == 200 and by_alias.json()["model"] == "qwen3-vl-8b-fp8"
    chat = gw.client.post(
        "/v1/chat/completions",
        json={"model": "qwen-vl-fp8", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    )
    assert chat.status_code == 200 and chat.json()["model"] == "qwen3-vl-8b-fp8"
    assert emulator_stats(fp8)["chat_requests"] == 2 and emulator_stats(small)["chat_requests"] == 1
    unknown = gw.ask({"image": image, "prompt": "hi", "model": "gpt-4o"})
    assert unknown.status_code == 404 and unknown.json()["code"] == 40401
    listed = {m["id"]: m["root"] for m in gw.client.get("/v1/models").json()["data"]}
    assert listed == {
        "qwen3-vl-8b": "qwen3-vl-8b",
        "qwen-vl": "qwen3-vl-8b",
        "qwen3-vl-8b-fp8": "qwen3-vl-8b-fp8",
        "qwen-vl-fp8": "qwen3-vl-8b-fp8",
    }
    replicas = gw.client.get("/readyz").json()["upstream"]
    assert {name: state["model"] for name, state in replicas.items()} == {
        "r0": "qwen3-vl-8b",
        "qwen3-vl-8b-fp8/r0": "qwen3-vl-8b-fp8",
    }


def test_a_key_sees_and_uses_only_its_models(two_models, make_gateway, tmp_path) -> None:
    small, fp8 = two_models
    gw = make_gateway([small.url], model_groups=groups(small, fp8), auth_disabled=False)
    key = create_key(tmp_path, "fp8-only", "--models", "qwen3-vl-8b-fp8")
    headers = {"Authorization": f"Bearer {key}"}
    image = bare_b64(png_bytes())
    allowed = gw.client.post(
        "/v1/qwen-vl", json={"image": image, "prompt": "hi", "model": "qwen-vl-fp8"}, headers=headers
    )
    assert allowed.status_code == 200, allowed.text
    refused = gw.client.post("/v1/qwen-vl", json={"image": image, "prompt": "hi"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == 40301
    chat = gw.client.post(
        "/v1/chat/completions",
        json={"model": "qwen3-vl-8b", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert chat.status_code == 403 and chat.json()["error"]["code"] == 40301
    listed = [m["id"] for m in gw.client.get("/v1/models", headers=headers).json()["data"]]
    assert sorted(listed) == ["qwen-vl-fp8", "qwen3-vl-8b-fp8"]
