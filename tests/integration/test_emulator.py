"""The emulator end to end: the official OpenAI SDK against it, and the CLI as a real process."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest
from PIL import Image

from gateway.emulator import EmulatorApp, EmulatorConfig, create_emulator_app
from gateway.emulator.config import ANSWER_MARKER
from tests.servers import free_port, serve, wait_for_port

KEY = "emulator-key"


@pytest.fixture
def emulator() -> Iterator[tuple[str, EmulatorApp]]:
    app = create_emulator_app(EmulatorConfig(api_key=KEY, max_model_len=4096))
    with serve(app) as server:
        yield server.url, app


@pytest.fixture
def client(emulator: tuple[str, EmulatorApp]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{emulator[0]}/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def photo_uri(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def vision_messages(text: str, *urls: str) -> list[dict[str, object]]:
    parts: list[dict[str, object]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


def test_sdk_lists_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [(m.id, m.owned_by) for m in models] == [("qwen3-vl-8b", "vlgw-emulator")]


def test_sdk_non_stream_and_stream_agree(client: openai.OpenAI) -> None:
    messages = vision_messages("Describe the photo.", photo_uri(1024, 768))
    whole = client.chat.completions.create(model="qwen3-vl-8b", messages=messages, max_tokens=50)  # type: ignore[arg-type]
    text = whole.choices[0].message.content or ""
    assert text.startswith(ANSWER_MARKER) and "1024x768 JPEG" in text
    assert whole.usage is not None and whole.usage.prompt_tokens == 5 + 5 + 3 + 768 + 2
    stream = client.chat.completions.create(
        model="qwen3-vl-8b",
        messages=messages,
        max_tokens=50,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_sdk_sees_vllms_errors(client: openai.OpenAI, emulator: tuple[str, EmulatorApp]) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="maximum context length is 4096 tokens"):
        big = vision_messages("x", *[photo_uri(1920, 1080)] * 4)  # 4 x 1224 tokens
        client.chat.completions.create(model="qwen3-vl-8b", messages=big)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match=r"At most 4 image\(s\)"):
        many = vision_messages("x", *[photo_uri(64, 64)] * 5)
        client.chat.completions.create(model="qwen3-vl-8b", messages=many)  # type: ignore[arg-type]
    bad = openai.OpenAI(base_url=f"{emulator[0]}/v1", api_key="wrong", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_cli_serves_and_says_it_is_not_a_model() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gateway.emulator.cli",
        "--port",
        str(port),
        "--served-model-name",
        "demo",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, timeout=20)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert models["data"][0]["id"] == "demo"
        assert httpx.get(f"http://127.0.0.1:{port}/version").json()["version"].endswith("-emulator")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "vLLM EMULATOR, NOT A MODEL" in output
