"""The emulator's HTTP surface, against a real server on loopback."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.emulator.config import ANSWER_MARKER
from gateway.images.geometry import image_prompt_tokens
from tests.unit.emulator.conftest import MODEL, Emulator, data_uri, image_bytes, image_message

Start = Callable[..., Emulator]


def assert_error(response: httpx.Response, status: int, err_type: str, fragment: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (err_type, status)
    assert fragment in error["message"]


def test_models_health_version(emulator: Emulator) -> None:
    models = emulator.client.get("/v1/models").json()
    assert models["object"] == "list"
    card = models["data"][0]
    assert (card["id"], card["object"], card["owned_by"], card["root"]) == (
        MODEL,
        "model",
        "vlgw-emulator",
        MODEL,
    )
    assert card["max_model_len"] == 32768 and card["parent"] is None and card["permission"]
    health = emulator.client.get("/health")
    assert (health.status_code, health.content) == (200, b"")
    assert emulator.client.get("/version").json()["version"].endswith("-emulator")
    assert emulator.client.get("/nope").status_code == 404
    assert emulator.client.get("/v1/chat/completions").status_code == 405


def test_non_stream_answer_usage_and_request_id(emulator: Emulator) -> None:
    image = image_bytes(640, 480, (127, 127, 127))
    response = emulator.client.post(
        "/v1/chat/completions",
        headers={"X-Request-Id": "req-123"},
        json={"model": MODEL, "messages": image_message("what is it?", data_uri(image)), "temperature": 0.7},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert (body["id"], body["object"], body["model"]) == ("chatcmpl-req-123", "chat.completion", MODEL)
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith(ANSWER_MARKER)
    assert "640x480 JPEG" in choice["message"]["content"]
    assert (choice["finish_reason"], choice["stop_reason"], choice["logprobs"]) == ("stop", None, None)
    # "what is it?" = 11 ASCII chars -> 3 tokens; 1 message (5) + generation prompt (3); the image
    assert body["usage"]["prompt_tokens"] == 3 + 5 + 3 + image_prompt_tokens(480, 640, 65536, 1_310_720)
    assert body["usage"]["completion_tokens"] == 24
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 24


def test_identical_input_gives_identical_answer_whatever_the_temperature(emulator: Emulator) -> None:
    first = emulator.chat(temperature=0).json()["choices"][0]["message"]["content"]
    second = emulator.chat(temperature=1.5, top_p=0.5).json()["choices"][0]["message"]["content"]
    other = emulator.chat(messages=[{"role": "user", "content": "bye"}]).json()["choices"][0]["message"]
    assert first == second != other["content"]


def test_max_tokens_truncates_with_finish_reason_length(emulator: Emulator) -> None:
    body = emulator.chat(max_tokens=3).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["message"]["content"] == "[vLLM emulator, not"


def test_prompt_plus_max_tokens_over_the_context_is_shortened_to_fit(start_emulator: Start) -> None:
    """vLLM 0.33 lowers max_tokens to what the context leaves and ends with "length"."""
    emulator = start_emulator(max_model_len=1300, answer_tokens=400)
    big = data_uri(image_bytes(1920, 1080))  # 1224 tokens at the 1.31 MP budget
    response = emulator.chat(messages=image_message("x", big), max_tokens=1000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] == 1300


def test_error_shapes(start_emulator: Start) -> None:
    emulator = start_emulator(max_images=2, max_model_len=2000)
    assert_error(emulator.chat(model="gpt-4"), 404, "NotFoundError", "The model `gpt-4` does not exist.")
    two = [data_uri(image_bytes())] * 3
    assert_error(
        emulator.chat(messages=image_message("x", *two)),
        400,
        "BadRequestError",
        "At most 2 image(s) may be provided in one prompt.",
    )
    broken = "data:image/jpeg;base64," + "A" * 400
    assert_error(
        emulator.chat(messages=image_message("x", broken)), 400, "BadRequestError", "Failed to load image"
    )
    big = data_uri(image_bytes(1920, 1080))  # 1224 tokens each at the 1.31 MP budget
    assert_error(
        emulator.chat(messages=image_message("x", big, big)),
        400,
        "BadRequestError",
        "maximum context length is 2000 tokens",
    )
    assert emulator.chat(messages=image_message("x", big), max_tokens=1000).status_code == 200
    invalid = emulator.client.post("/v1/chat/completions", content=b"{not json")
    assert_error(invalid, 400, "BadRequestError", "JSON")
    assert_error(emulator.chat(stream_options={"include_usage": True}), 400, "BadRequestError", "stream=True")
    stats = emulator.stats()
    assert stats["errors_by_status"] == {"400": 5, "404": 1}
    assert stats["completed"] == 1  # the shortened answer


def test_api_key_gives_vllms_odd_401_and_leaves_health_and_metrics_open(start_emulator: Start) -> None:
    emulator = start_emulator(api_key="secret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}):
        response = emulator.client.get("/v1/models", headers=headers)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert emulator.chat().status_code == 401
    assert emulator.client.get("/health").status_code == 200
    assert emulator.client.get("/metrics").status_code == 200
    ok = emulator.client.get("/v1/models", headers={"Authorization": "Bearer secret"})
    assert ok.status_code == 200


def test_requests_log_records_bodies_and_headers(start_emulator: Start) -> None:
    emulator = start_emulator(api_key="secret")
    image = image_bytes(64, 64)
    body = {"model": MODEL, "messages": image_message("hi", data_uri(image)), "max_tokens": 7, "extra": 1}
    headers = {"Authorization": "Bearer secret", "X-Request-Id": "r1", "traceparent": "00-abc-def-01"}
    assert emulator.client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
    emulator.chat(model="unknown")
    entries = emulator.client.get("/emulator/requests", params={"limit": 5}).json()["data"]
    assert len(entries) == 2
    first, second = entries
    assert first["body"] == body
    assert (first["request_id"], first["traceparent"], first["status"]) == ("r1", "00-abc-def-01", 200)
    assert first["headers"]["authorization"] == "Bearer <redacted>"
    assert "secret" not in str(entries)
    assert len(first["image_sha256"]) == 1
    assert second["status"] == 401  # refused before parsing, kept as text
    assert '"model":"unknown"' in second["body"]


def test_mm_cache_hits_per_image_counts_and_metrics(emulator: Emulator) -> None:
    red, blue = data_uri(image_bytes(colour=(255, 0, 0))), data_uri(image_bytes(colour=(0, 0, 255)))
    for urls in ((red,), (red, blue), (red,)):
        assert emulator.chat(messages=image_message("x", *urls)).status_code == 200
    stats = emulator.stats()
    assert (stats["mm_cache_queries"], stats["mm_cache_hits"]) == (4, 2)
    assert sorted(stats["images"].values()) == [1, 3]
    families = {f.name: f for f in text_string_to_metric_families(emulator.client.get("/metrics").text)}
    labels = {"model_name": MODEL, "engine": "0"}

    def value(family: str, sample: str) -> float:
        return next(s.value for s in families[family].samples if s.name == sample and s.labels == labels)

    assert value("vllm:mm_cache_queries", "vllm:mm_cache_queries_total") == 4
    assert value("vllm:mm_cache_hits", "vllm:mm_cache_hits_total") == 2
    assert value("vllm:generation_tokens", "vllm:generation_tokens_total") == 3 * 24
    assert value("vllm:prompt_tokens", "vllm:prompt_tokens_total") > 3 * 300
    assert value("vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == 3
    assert value("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == 3
    assert value("vllm:num_requests_running", "vllm:num_requests_running") == 0
    assert value("vllm:num_requests_waiting", "vllm:num_requests_waiting") == 0
    assert value("vllm:kv_cache_usage_perc", "vllm:kv_cache_usage_perc") == 0


def test_client_uuid_is_trusted_as_cache_key_giving_a_stale_answer(emulator: Emulator) -> None:
    def ask(colour: tuple[int, int, int]) -> str:
        url = data_uri(image_bytes(colour=colour, fmt="PNG"), "image/png")
        part = {"type": "image_url", "image_url": {"url": url}, "uuid": "same"}
        body = emulator.chat(messages=[{"role": "user", "content": [part]}]).json()
        return body["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    assert "#ff0000" in ask((255, 0, 0))
    assert "#ff0000" in ask((0, 0, 255))  # vLLM trusts the uuid without checking the bytes


def test_image_urls_are_fetched_and_fetch_failures_are_422(emulator: Emulator, start_emulator: Start) -> None:
    image = image_bytes(320, 240)

    async def image_server(scope: dict, receive: object, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        found = scope["path"] == "/cat.jpg"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found else 404,
                "headers": [(b"content-type", b"image/jpeg")],
            }
        )
        await send({"type": "http.response.body", "body": image if found else b"missing"})

    from tests.servers import serve

    with serve(image_server) as images:
        ok = emulator.chat(messages=image_message("x", f"{images.url}/cat.jpg"))
        assert ok.status_code == 200
        assert "320x240 JPEG" in ok.json()["choices"][0]["message"]["content"]
        assert_error(
            emulator.chat(messages=image_message("x", f"{images.url}/dog.jpg")),
            422,
            "UnprocessableEntityError",
            "Failed to fetch image",
        )
    assert_error(
        emulator.chat(messages=image_message("x", "ftp://example.com/a.jpg")),
        400,
        "BadRequestError",
        "URL must be",
    )
