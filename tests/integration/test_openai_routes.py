"""The OpenAI-compatible routes, driven with the official `openai` SDK (sync and async)."""

from __future__ import annotations

import openai
import pytest

from tests.images import data_uri, photo_jpeg, png_bytes
from tests.integration.conftest import emulator_requests, set_faults
from tests.servers import free_port


def _client(gateway, cls=openai.OpenAI, key: str | None = None):
    client = cls(
        base_url=f"{gateway.url}/v1", api_key=key or gateway.key or "unused", max_retries=0, timeout=20
    )
    if isinstance(client, openai.OpenAI):
        gateway.closers.append(client.close)  # its pooled sockets, at the gateway's teardown
    return client


def _image_message(url: str, text: str = "What is in this picture?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}],
        }
    ]


def test_sync_non_stream_with_data_uri(gateway, emulator) -> None:
    client = _client(gateway)
    completion = client.chat.completions.create(
        model="qwen3-vl-8b", messages=_image_message(data_uri(png_bytes())), max_tokens=50, temperature=0
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert completion.choices[0].finish_reason in ("stop", "length")
    [sent] = emulator_requests(emulator)
    assert sent["body"]["max_tokens"] == 50
    assert sent["body"]["temperature"] == 0


def test_image_url_is_fetched_by_the_gateway(gateway, emulator, image_origin) -> None:
    origin, files = image_origin
    files.files["/cat.jpg"] = (photo_jpeg(320, 240), "image/jpeg")
    client = _client(gateway)
    completion = client.chat.completions.create(
        model="qwen3-vl-8b", messages=_image_message(f"{origin.url}/cat.jpg")
    )
    assert completion.choices[0].message.content
    [sent] = emulator_requests(emulator)
    url = sent["body"]["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")  # vLLM never sees the URL
    assert files.hits["/cat.jpg"] == 1


def test_alias_is_mapped_and_uuid_stripped(gateway, emulator) -> None:
    client = _client(gateway)
    messages = _image_message(data_uri(png_bytes()))
    messages[0]["content"][0]["uuid"] = "attacker-chosen-cache-key"
    client.chat.completions.create(model="qwen-vl", messages=messages)
    [sent] = emulator_requests(emulator)
    assert sent["body"]["model"] == "qwen3-vl-8b"
    assert "uuid" not in sent["body"]["messages"][0]["content"][0]
    # Fields without a gateway policy pass through unchanged; max_tokens gets the server default.
    assert sent["body"]["max_tokens"] == gateway.settings.default_max_tokens


def test_models_lists_served_name_and_aliases(gateway) -> None:
    models = _client(gateway).models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == "qwen3-vl-8b"
    assert "qwen-vl" in ids


def test_sync_stream_with_usage(gateway) -> None:
    client = _client(gateway)
    stream = client.chat.completions.create(
        model="qwen3-vl-8b",
        messages=_image_message(data_uri(png_bytes())),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[vLLM emulator")
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and usage_chunks[0].usage.total_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_stream_without_usage_hides_the_usage_chunk_but_asks_upstream(gateway, emulator) -> None:
    client = _client(gateway)
    chunks = list(
        client.chat.completions.create(
            model="qwen3-vl-8b", messages=_image_message(data_uri(png_bytes())), stream=True
        )
    )
    assert all(c.choices for c in chunks)
    [sent] = emulator_requests(emulator)
    assert sent["body"]["stream_options"] == {"include_usage": True}


async def test_async_client_stream_and_non_stream(gateway) -> None:
    client = _client(gateway, openai.AsyncOpenAI)
    completion = await client.chat.completions.create(
        model="qwen3-vl-8b", messages=_image_message(data_uri(png_bytes()))
    )
    assert completion.choices[0].message.content
    stream = await client.chat.completions.create(
        model="qwen3-vl-8b",
        messages=_image_message(data_uri(png_bytes())),
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces = [chunk async for chunk in stream]
    assert (
        "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
        == completion.choices[0].message.content
    )
    assert pieces[-1].usage.completion_tokens == completion.usage.completion_tokens
    await client.close()


def test_bad_request_raises_bad_request_error(gateway) -> None:
    client = _client(gateway)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="qwen3-vl-8b", messages=_image_message("data:image/png;base64,!!!")
        )
    assert info.value.body["code"] == 40002
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="qwen3-vl-8b", messages=[{"role": "user", "content": "hi"}], max_tokens=10**6
        )
    assert info.value.body["code"] == 40007


def test_unknown_model_raises_not_found(gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        _client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == 40401


def test_no_upstream_raises_service_unavailable(make_gateway) -> None:
    gw = make_gateway([f"http://127.0.0.1:{free_port()}"], upstream_model="qwen3-vl-8b")
    with pytest.raises(openai.InternalServerError) as info:
        _client(gw).chat.completions.create(model="qwen3-vl-8b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    assert info.value.body["code"] == 50301


def test_upstream_error_mid_stream_raises_in_the_sdk(gateway, emulator) -> None:
    set_faults(emulator, stream_error_after_chunks=3)
    stream = _client(gateway).chat.completions.create(
        model="qwen3-vl-8b", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)
