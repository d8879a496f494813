"""POST /v1/qwen-vl end to end: gateway and emulator as real servers, driven with httpx."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from gateway.emulator.config import EmulatorConfig
from tests.images import bare_b64, data_uri, photo_jpeg, png_bytes
from tests.integration.conftest import emulator_requests, emulator_stats, set_faults
from tests.servers import free_port, serve

PUBLISHED_PROMPT = "请描述这张图片的内容"


def test_published_url_example_answers(gateway, emulator, image_origin) -> None:
    origin, files = image_origin
    files.files["/test.jpg"] = (photo_jpeg(), "image/jpeg")
    response = gateway.ask({"image": f"{origin.url}/test.jpg", "prompt": PUBLISHED_PROMPT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0
    assert body["text"]
    assert (
        body["usage"]["total_tokens"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        > 0
    )
    assert body["cached"] is False
    assert body["finish_reason"] in ("stop", "length")
    assert body["model"] == "qwen3-vl-8b"
    assert response.headers["x-request-id"] == body["request_id"]
    assert files.hits["/test.jpg"] == 1


@pytest.mark.parametrize("encode", [bare_b64, data_uri], ids=["bare-base64", "data-uri"])
def test_base64_photo_answers(gateway, encode) -> None:
    response = gateway.ask(
        {"image": encode(photo_jpeg()), "prompt": "这张截图里有什么问题?", "max_tokens": 300}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["text"] and body["usage"]["prompt_tokens"] > 0


def test_upstream_request_field_by_field(gateway, emulator) -> None:
    jpeg = photo_jpeg(640, 480)
    png = png_bytes()
    response = gateway.ask(
        {
            "image": [data_uri(jpeg), bare_b64(png)],
            "prompt": "compare",
            "max_tokens": 77,
            "temperature": 0.3,
            "top_p": 0.9,
        },
        headers={"x-request-id": "client-chosen-id-1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "client-chosen-id-1"
    [sent] = emulator_requests(emulator)
    body = sent["body"]
    assert body["model"] == "qwen3-vl-8b"
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert "stream" not in body or body["stream"] is False
    [message] = body["messages"]
    assert message["role"] == "user"
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[2]["text"] == "compare"
    first, second = (p["image_url"]["url"] for p in parts[:2])
    assert first.startswith("data:image/jpeg;base64,")
    assert second.startswith("data:image/png;base64,")
    assert base64.b64decode(second.split(",", 1)[1]) == png  # small images pass through byte for byte
    assert not any("uuid" in p for p in parts)
    assert sent["headers"]["x-request-id"] == "client-chosen-id-1"


def test_defaults_when_fields_are_left_out(gateway, emulator) -> None:
    assert gateway.ask({"image": bare_b64(png_bytes()), "prompt": "hi"}).status_code == 200
    [sent] = emulator_requests(emulator)
    assert sent["body"]["max_tokens"] == gateway.settings.default_max_tokens
    assert "temperature" not in sent["body"]  # the model's own default applies


def test_insane_request_id_is_replaced(gateway) -> None:
    response = gateway.ask(
        {"image": bare_b64(png_bytes()), "prompt": "hi"}, headers={"x-request-id": "bad id\t<>"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "bad id\t<>"
    assert response.headers["x-request-id"] == response.json()["request_id"]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", 40001, None),
        (b"[]", 40001, None),
        (b'{"prompt": "x"}', 40001, "image"),
        (b'{"image": "aGk=", "prompt": 5}', 40001, "prompt"),
        (b'{"image": "aGk=", "prompt": "x", "colour": "red"}', 40001, "colour"),
        (b'{"image": [], "prompt": "x"}', 40001, "image"),
        (b'{"image": "aGk="}', 40001, "prompt"),
        (b'{"image": "aGk=", "prompt": "x", "max_tokens": 0}', 40007, "max_tokens"),
        (b'{"image": "aGk=", "prompt": "x", "max_tokens": 100000}', 40007, "max_tokens"),
        (b'{"image": "aGk=", "prompt": "x", "temperature": 2.5}', 40007, "temperature"),
        (b'{"image": "aGk=", "prompt": "x", "top_p": 0}', 40007, "top_p"),
    ],
)
def test_schema_and_range_errors_name_the_field(gateway, emulator, body, code, param) -> None:
    response = gateway.post("/v1/qwen-vl", content=body, headers={"content-type": "application/json"})
    assert response.status_code == code // 100
    payload = response.json()
    assert payload["code"] == code
    assert payload["request_id"] == response.headers["x-request-id"]
    if param:
        assert param in payload["message"]
    assert emulator_stats(emulator)["chat_requests"] == 0


def test_body_over_limit_is_refused_before_parsing(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], max_body_bytes=64 * 1024)
    response = gw.post(
        "/v1/qwen-vl", content=b"x" * (200 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == 41301


def test_body_over_limit_without_content_length(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], max_body_bytes=64 * 1024)

    def chunks():
        for _ in range(10):
            yield b"x" * 16 * 1024

    response = gw.post("/v1/qwen-vl", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == 41301


def test_upstream_down_is_503_fast(make_gateway) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw = make_gateway([dead], upstream_model="qwen3-vl-8b")
    started = time.monotonic()
    response = gw.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == 50301
    assert int(response.headers["retry-after"]) >= 1
    assert body["retry_after"] >= 1
    assert time.monotonic() - started < 5


def test_upstream_hang_is_504_within_deadline(emulator, make_gateway) -> None:
    gw = make_gateway([emulator.url], upstream_timeout=1.0)
    set_faults(emulator, hang=True)
    started = time.monotonic()
    response = gw.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["code"] == 50401
    assert 0.9 < elapsed < 5
    # The gateway hung up: the emulator saw the request end (no leaked upstream connection).
    deadline = time.monotonic() + 3
    while emulator_stats(emulator)["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = emulator_stats(emulator)
    assert stats["active"] == 0
    assert stats["cancelled"] >= 1


@pytest.mark.parametrize("status", [500, 502])
def test_upstream_5xx_is_502(gateway, emulator, status) -> None:
    set_faults(emulator, error_rate=1.0, error_status=status)
    response = gateway.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    assert response.status_code == 502
    assert response.json()["code"] == 50201


def test_upstream_503_is_503_with_retry_after(gateway, emulator) -> None:
    set_faults(emulator, error_rate=1.0, error_status=503)
    response = gateway.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    assert response.status_code == 503
    assert response.json()["code"] == 50301
    assert "retry-after" in response.headers


def test_upstream_garbage_is_502(make_gateway) -> None:
    async def garbage(scope, receive, send):
        # Healthy to the health checks, nonsense on the chat route.
        if scope["type"] != "http":
            return
        body = {
            "/health": b"",
            "/v1/models": b'{"object": "list", "data": [{"id": "qwen3-vl-8b", "object": "model"}]}',
        }.get(scope["path"], b"<html>surprise</html>")
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})

    with serve(garbage) as upstream:
        gw = make_gateway([upstream.url], upstream_model="qwen3-vl-8b")
        response = gw.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    assert response.status_code == 502
    assert response.json()["code"] == 50201


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(max_model_len=600)])
def test_context_overflow_is_40006(gateway, emulator_config) -> None:
    response = gateway.ask(
        {"image": bare_b64(photo_jpeg(1024, 768)), "prompt": "describe", "max_tokens": 100}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 40006


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(max_model_len=1000, answer_tokens=400)])
def test_prompt_that_fits_with_max_tokens_over_the_context_gets_a_shortened_answer(
    gateway, emulator_config
) -> None:
    """vLLM 0.33 shortens max_tokens to the room left; the gateway must not refuse with 40006."""
    response = gateway.ask(
        {"image": bare_b64(photo_jpeg(1024, 768)), "prompt": "describe", "max_tokens": 500}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["finish_reason"] == "length"
    assert body["usage"]["total_tokens"] == 1000


def test_unknown_route_and_method_are_json(gateway) -> None:
    missing = gateway.client.get("/v1/nope")  # an unknown /v1 path: OpenAI's envelope, for the SDKs
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 40401
    assert "x-request-id" in missing.headers
    outside = gateway.client.get("/nope")
    assert outside.status_code == 404 and outside.json()["code"] == 40401
    wrong = gateway.client.get("/v1/qwen-vl")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == 40501


def test_health_ready_and_metrics(gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok"}
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True
    gateway.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    gateway.ask({"prompt": "hi"})
    text = gateway.client.get("/metrics").text
    assert 'gateway_requests_total{code="0",route="/v1/qwen-vl"}' in text
    assert 'gateway_requests_total{code="40001",route="/v1/qwen-vl"}' in text
    assert "gateway_request_duration_seconds_bucket" in text


def test_readyz_is_503_naming_the_upstream_when_it_is_down(make_gateway) -> None:
    gw = make_gateway([f"http://127.0.0.1:{free_port()}"])
    response = gw.client.get("/readyz")
    assert response.status_code == 503
    assert "upstream" in response.json()["not_ready"]


def test_no_stack_trace_on_internal_error(gateway, monkeypatch) -> None:
    services = gateway.server.server.config.app.state.services

    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services.upstream, "chat", boom)
    response = gateway.ask({"image": bare_b64(png_bytes()), "prompt": "hi"})
    assert response.status_code == 500
    assert response.json()["code"] == 50001
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_many_concurrent_requests_all_answer(gateway) -> None:
    import concurrent.futures

    payload = {"image": bare_b64(png_bytes()), "prompt": "hi"}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.post(f"{gateway.url}/v1/qwen-vl", json=payload, timeout=30).status_code,
                range(48),
            )
        )
    assert statuses == [200] * 48
