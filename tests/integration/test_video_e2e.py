"""Short videos end to end: a real gateway and the vLLM emulator on loopback, both routes.

Source of every clip: encoded in the test by FFmpeg's own encoders and muxers through PyAV
(tests/unit/video/clips.py); nothing is downloaded. The emulator is started as vLLM must be for
the gateway's clips (``--limit-mm-per-prompt '{"video": 1}'``, ``--media-io-kwargs '{"video":
{"fps": 2, "num_frames": -1}}'``, docs/video.md) and logs every request it receives, so each test
checks what vLLM was sent: a JPEG sequence of the frames the gateway's own intake makes of the
clip, never the container.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import openai
import pytest
from PIL import Image

from gateway.emulator.app import create_emulator_app
from gateway.emulator.config import EmulatorConfig
from gateway.presets.loader import BUNDLED_PRESETS, load_presets
from gateway.settings import Settings
from gateway.video import PreparedVideo, VideoIntake, max_video_tokens
from gateway.video.limits import VideoLimits
from gateway.video.prepared import DATA_URI_PREFIX
from tests.images import data_uri as image_data_uri
from tests.images import photo_jpeg
from tests.integration.conftest import GatewayUnderTest, create_key, emulator_requests
from tests.servers import StaticFiles, ThreadedServer, serve
from tests.unit.video import clips

MODEL = "qwen3-vl-8b"
PROMPT = "What happens in this clip?"
TEXT_TOKENS_AT_MOST = 64  # the prompt above and the chat template around it, generously

# Ordinary clips a phone or a browser records, small so the suite stays quick.
CLIPS: dict[str, Callable[[], bytes]] = {
    "mp4-h264": lambda: clips.mp4(frames=45, fps=15),
    "mp4-h264-aac": lambda: clips.mp4(frames=45, fps=15, audio=True),
    "webm-vp9": lambda: clips.webm(frames=45, fps=15),
    "webm-vp9-opus": lambda: clips.webm(frames=45, fps=15, audio=True),
    "mp4-rotated-90": lambda: clips.mp4(frames=30, fps=15, rotation=90, paint=clips.halves),
    "mp4-variable-rate": lambda: clips.mp4(times=[0, 0.05, 0.4, 0.45, 1.3, 1.9, 2.0, 2.6, 3.1]),
}


@functools.cache
def clip(name: str) -> bytes:
    return CLIPS[name]()


@functools.cache
def prepared(name: str) -> PreparedVideo:
    """What the gateway's intake makes of the clip at the default settings (the expected frames)."""

    async def run() -> PreparedVideo:
        intake = VideoIntake(Settings(_env_file=None))  # type: ignore[call-arg]
        try:
            return await intake.prepare(b64(clip(name)))
        finally:
            await intake.aclose()

    return asyncio.run(run())


def video_data_uri(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(max_videos=1, video_num_frames=-1, video_fps=2.0)


def _sdk(gateway: GatewayUnderTest) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60)
    gateway.closers.append(client.close)
    return client


def _video_messages(url: str, text: str = PROMPT, **part: Any) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": url}, **part},
                {"type": "text", "text": text},
            ],
        }
    ]


def _events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def ask_app(
    gateway: GatewayUnderTest, video: str, *, stream: bool = False, **body: Any
) -> tuple[str, int, str]:
    """(answer text, prompt tokens, X-Cache) of one app-route request that must succeed."""
    payload = {"video": video, "prompt": PROMPT, "max_tokens": 400, **body}
    if not stream:
        response = gateway.ask(payload)
        assert response.status_code == 200, response.text
        answer = response.json()
        return answer["text"], answer["usage"]["prompt_tokens"], response.headers["x-cache"]
    with gateway.client.stream("POST", "/v1/qwen-vl", json={**payload, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        events = _events(response)
        status = response.headers["x-cache"]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["code"] == 0, final
    return "".join(json.loads(e)["text"] for e in events[:-2]), final["usage"]["prompt_tokens"], status


def ask_openai(gateway: GatewayUnderTest, video: str, *, stream: bool = False) -> tuple[str, int, str]:
    """(answer text, prompt tokens, X-Cache) of one chat completion with a video_url part (OpenAI SDK)."""
    client = _sdk(gateway)
    messages = _video_messages(video)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, max_tokens=400, temperature=0
        )
        completion = raw.parse()
        assert completion.usage is not None
        return (
            completion.choices[0].message.content or "",
            completion.usage.prompt_tokens,
            raw.headers["x-cache"],
        )
    with client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=messages,
        max_tokens=400,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as raw:
        status = raw.headers["x-cache"]
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [usage] = [c.usage for c in chunks if c.usage is not None]
    return text, usage.prompt_tokens, status


ASKERS = {"app": ask_app, "openai": ask_openai}


def sent_video_part(emulator: ThreadedServer) -> dict[str, Any]:
    """The one video part of the last request vLLM received; every part checked for containers."""
    [sent] = emulator_requests(emulator)
    parts = [
        part for message in sent["body"]["messages"] for part in message["content"] if isinstance(part, dict)
    ]
    videos = [part for part in parts if part["type"] == "video_url"]
    assert len(videos) == 1, parts
    return videos[0]


def frames_of(url: str) -> list[Image.Image]:
    assert url.startswith(DATA_URI_PREFIX), url[:64]  # a JPEG sequence, never a container
    frames = []
    for text in url[len(DATA_URI_PREFIX) :].split(","):
        image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        assert image.format == "JPEG"
        frames.append(image)
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("route", ["app", "openai"])
@pytest.mark.parametrize("name", list(CLIPS))
def test_clip_reaches_vllm_as_jpeg_frames(gateway, emulator, name: str, route: str, stream: bool) -> None:
    expected = prepared(name)
    mime = "video/webm" if name.startswith("webm") else "video/mp4"
    text, prompt_tokens, _ = ASKERS[route](gateway, video_data_uri(clip(name), mime), stream=stream)
    part = sent_video_part(emulator)
    assert "uuid" not in part
    url = part["video_url"]["url"]
    assert url == expected.data_uri  # exactly the intake's frames
    frames = frames_of(url)
    assert len(frames) == expected.frames and expected.frames % 2 == 0
    assert {frame.size for frame in frames} == {(expected.width, expected.height)}
    # The emulator decoded the same sequence (its answer names what it saw) ...
    assert f"1 video: {expected.frames} frames {expected.width}x{expected.height} jpeg-sequence" in text
    # ... and counted the clip's tokens as the gateway estimated them.
    assert expected.visual_tokens <= prompt_tokens <= expected.visual_tokens + TEXT_TOKENS_AT_MOST


def test_rotated_clip_is_sent_upright(gateway, emulator) -> None:
    source = clips.mp4(size=(320, 240), frames=30, fps=15, rotation=90, paint=clips.halves)
    ask_app(gateway, b64(source))
    frames = frames_of(sent_video_part(emulator)["video_url"]["url"])
    width, height = frames[0].size
    assert height > width  # coded landscape, shown portrait
    # Turned a quarter: the red and blue halves (left, right as coded) are now above and below each
    # other (which way round is tests/unit/video's concern).
    top = frames[0].getpixel((width // 2, height // 4))
    bottom = frames[0].getpixel((width // 2, 3 * height // 4))
    left = frames[0].getpixel((width // 4, height // 4))
    assert isinstance(top, tuple) and isinstance(bottom, tuple) and isinstance(left, tuple)
    assert abs(top[0] - bottom[0]) > 150 and abs(top[2] - bottom[2]) > 150  # one red, one blue
    assert abs(top[0] - left[0]) < 40  # the top row is one colour: the halves are no longer side by side


def test_variable_frame_rate_is_sampled_by_time(gateway, emulator) -> None:
    # Frames at 0, 0.2, 1.6 s: sampled at 2 fps, targets 0, 0.5, 1.0, 1.5 show frames 0, 1, 1, 1.
    times = [0.0, 0.2, 1.6, 1.8]
    source = clips.mp4(times=times, size=(128, 96))
    ask_app(gateway, b64(source))
    frames = frames_of(sent_video_part(emulator)["video_url"]["url"])
    reds = [frame.getpixel((8, 8))[0] for frame in frames]  # type: ignore[index]
    assert len(frames) == 4
    assert abs(reds[0] - 0) <= 8 and all(abs(red - 16) <= 8 for red in reds[1:]), reds


@pytest.mark.parametrize("route", ["app", "openai"])
def test_same_clip_as_url_then_base64_is_a_cache_hit(
    gateway, emulator, image_origin: tuple[ThreadedServer, StaticFiles], route: str
) -> None:
    origin, files = image_origin
    data = clips.mp4(frames=30, fps=15, size=(160, 128))
    files.files["/clip.mp4"] = (data, "video/mp4")
    _, _, first = ASKERS[route](gateway, f"{origin.url}/clip.mp4")
    assert files.hits["/clip.mp4"] == 1
    assert frames_of(sent_video_part(emulator)["video_url"]["url"])  # the URL was fetched by the gateway
    _, _, second = ASKERS[route](gateway, video_data_uri(data))
    _, _, third = ASKERS[route](gateway, b64(data))
    assert [first, second, third] == ["MISS", "HIT", "HIT"]
    assert len(emulator_requests(emulator, limit=10)) == 1
    # Another clip is another entry.
    _, _, other = ASKERS[route](
        gateway, b64(clips.mp4(frames=30, fps=15, size=(160, 128), paint=clips.halves))
    )
    assert other == "MISS"


HOSTILE = [
    pytest.param(lambda: clips.mp4()[:32] + bytes(range(256)) * 40, 40010, "corrupt", id="ftyp-then-junk"),
    pytest.param(lambda: clips.encode(container="mp4", codec="mpeg4"), 40010, "codec", id="mpeg4-part2"),
    pytest.param(lambda: clips.mp4(times=[0, 3600, 7200], size=(64, 64)), 41302, "duration", id="two-hours"),
    pytest.param(lambda: clips.mp4(size=(4000, 2200), frames=2), 41302, "pixels", id="over-4k"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("make", "code", "reason"), HOSTILE)
def test_hostile_clips_are_refused_before_vllm(gateway, emulator, make, code: int, reason: str) -> None:
    data = make()
    response = gateway.ask({"video": b64(data), "prompt": PROMPT})
    assert response.status_code == code // 100, response.text
    body = response.json()
    assert (body["code"], body["reason"]) == (code, reason)
    chat = gateway.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": _video_messages(video_data_uri(data))}
    )
    assert chat.status_code == code // 100, chat.text
    assert chat.json()["error"]["code"] == code
    assert emulator_requests(emulator, limit=10) == []


@pytest.mark.parametrize("route", ["app", "openai"])
def test_private_video_url_refused_without_a_connection(
    emulator, make_gateway, image_origin: tuple[ThreadedServer, StaticFiles], route: str
) -> None:
    origin, files = image_origin
    files.files["/clip.mp4"] = (clips.mp4(frames=4, size=(64, 64)), "video/mp4")
    gw = make_gateway([emulator.url], image_allow_private_urls=False)
    url = f"{origin.url}/clip.mp4"
    if route == "app":
        response = gw.ask({"video": url, "prompt": PROMPT})
        code = response.json()["code"]
    else:
        response = gw.post("/v1/chat/completions", json={"model": MODEL, "messages": _video_messages(url)})
        code = response.json()["error"]["code"]
    assert (response.status_code, code) == (400, 40003), response.text
    assert "/clip.mp4" not in files.hits  # refused on the address, never connected
    assert emulator_requests(emulator, limit=10) == []


def test_image_and_video_together_is_40001(gateway) -> None:
    response = gateway.ask(
        {"image": image_data_uri(photo_jpeg()), "video": b64(clip("mp4-h264")), "prompt": "x"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 40001
    assert "video" in body["message"] and "image" in body["message"]


def test_neither_image_nor_video_is_40001(gateway) -> None:
    for body in ({"prompt": "x"}, {"video": "", "prompt": "x"}, {"image": [], "prompt": "x"}):
        response = gateway.ask(body)
        assert (response.status_code, response.json()["code"]) == (400, 40001), body


def test_two_video_parts_are_refused(gateway, emulator) -> None:
    url = video_data_uri(clip("mp4-h264"))
    messages = _video_messages(url)
    messages[0]["content"].insert(0, {"type": "video_url", "video_url": {"url": url}})
    response = gateway.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 40005 and "video_url" in error["message"]
    assert emulator_requests(emulator, limit=10) == []


def test_video_part_bare_string_and_client_uuid(gateway, emulator) -> None:
    """vLLM's bare-string form is normalised, and a client ``uuid`` (vLLM's media cache key) dropped."""
    messages = _video_messages("unused", uuid="client-chosen")
    messages[0]["content"][0]["video_url"] = video_data_uri(clip("webm-vp9"), "video/webm")
    response = gateway.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": messages, "max_tokens": 50}
    )
    assert response.status_code == 200, response.text
    part = sent_video_part(emulator)
    assert "uuid" not in part and part["video_url"]["url"] == prepared("webm-vp9").data_uri


@pytest.mark.parametrize("name", ["describe_video", "moderate"])
def test_clip_presets(gateway, emulator, name: str) -> None:
    presets = load_presets(BUNDLED_PRESETS)
    if name not in presets:
        pytest.skip(f"the {name} preset is not on this branch yet")
    response = gateway.ask({"video": b64(clip("mp4-h264")), "preset": name})
    assert response.status_code == 200, response.text
    [sent] = emulator_requests(emulator)
    system, user = sent["body"]["messages"]
    assert system == {"role": "system", "content": presets[name].system}
    assert [part["type"] for part in user["content"]] == ["video_url", "text"]
    assert user["content"][0]["video_url"]["url"] == prepared("mp4-h264").data_uri


def test_tpm_is_charged_the_worst_clip_before_intake(
    tmp_path, emulator, make_gateway, image_origin: tuple[ThreadedServer, StaticFiles]
) -> None:
    """Admission charges any clip's most tokens at the configured budget (6380 at the defaults):
    a key whose per-minute tokens cannot hold that is refused before the clip is fetched."""
    origin, files = image_origin
    files.files["/clip.mp4"] = (clips.mp4(frames=4, size=(64, 64)), "video/mp4")
    worst = max_video_tokens(VideoLimits.from_settings(Settings(_env_file=None)))  # type: ignore[call-arg]
    small = create_key(tmp_path, "video-small", "--tpm", str(worst - 100))
    large = create_key(tmp_path, "video-large", "--tpm", str(worst + 1000))
    gw = make_gateway([emulator.url], auth_disabled=False)
    body = {"video": f"{origin.url}/clip.mp4", "prompt": PROMPT, "max_tokens": 50}
    refused = gw.client.post("/v1/qwen-vl", json=body, headers={"authorization": f"Bearer {small}"})
    assert (refused.status_code, refused.json()["code"]) == (429, 42902), refused.text
    assert "/clip.mp4" not in files.hits
    answered = gw.client.post("/v1/qwen-vl", json=body, headers={"authorization": f"Bearer {large}"})
    assert answered.status_code == 200, answered.text
    assert files.hits["/clip.mp4"] == 1


class RedirectingOrigin(StaticFiles):
    """The loopback origin, plus redirects a hostile server would answer (the images' SSRF cases)."""

    redirects: ClassVar[dict[str, bytes]] = {
        "/to-loopback": b"http://127.0.0.2:6379/",
        "/bad-redirect": b"http:127.0.0.1/x",
    }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        location = self.redirects.get(scope.get("path", ""))
        if scope["type"] != "http" or location is None:
            await super().__call__(scope, receive, send)
            return
        headers = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


# Only loopback targets: private addresses are refused (the default) and the origin is allowed by
# host:port, so every other loopback port, spelling or redirect is an SSRF attempt.
VIDEO_URLS = {
    "allowlisted-origin": ("{origin}/clip.mp4", 0),
    "missing": ("{origin}/missing.mp4", 40004),
    "not-a-video": ("{origin}/page.html", 40004),
    "other-loopback-port": ("http://127.0.0.1:6379/clip.mp4", 40003),
    "decimal-loopback": ("http://2130706433/clip.mp4", 40003),
    "mapped-loopback": ("http://[::ffff:127.0.0.1]/clip.mp4", 40003),
    "localhost": ("http://localhost/clip.mp4", 40003),
    "credentials": ("http://user:pass@127.0.0.1:{p}/clip.mp4", 40003),
    "gopher": ("gopher://127.0.0.1:6379/_FLUSHALL", 40003),
    "file": ("file:///etc/passwd", 40003),
    "redirect-to-loopback": ("{origin}/to-loopback", 40003),
    "bad-redirect": ("{origin}/bad-redirect", 40003),
}


@pytest.fixture(scope="module")
def redirecting_origin() -> Iterator[ThreadedServer]:
    files = RedirectingOrigin(
        {
            "/clip.mp4": (clips.mp4(frames=4, size=(64, 64)), "video/mp4"),
            "/page.html": (b"<html></html>", "text/html"),
        }
    )
    with serve(files) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VIDEO_URLS))
def test_video_urls_go_through_the_ssrf_checks(name: str, make_gateway, emulator, redirecting_origin) -> None:
    gateway = make_gateway(
        [emulator.url],
        image_allow_private_urls=False,
        image_url_allowlist=[f"127.0.0.1:{redirecting_origin.port}"],
        image_allowed_ports=[80, 443, redirecting_origin.port],
    )
    template, code = VIDEO_URLS[name]
    url = template.format(p=redirecting_origin.port, origin=redirecting_origin.url)
    app = gateway.ask({"video": url, "prompt": PROMPT, "max_tokens": 8})
    assert app.status_code < 500 and app.json()["code"] == code, app.text[:300]
    chat = gateway.post("/v1/chat/completions", json={"model": MODEL, "messages": _video_messages(url)})
    assert chat.status_code < 500, chat.text[:300]
    assert (chat.json()["error"]["code"] if chat.status_code != 200 else 0) == code, chat.text[:300]
    if code:
        assert "video" in app.json()["message"].lower(), app.text[:300]  # not an image's words


def test_clip_over_the_context_is_40006_before_vllm(make_gateway) -> None:
    expected = prepared("mp4-h264")
    small = EmulatorConfig(
        max_videos=1, video_num_frames=-1, video_fps=2.0, max_model_len=expected.visual_tokens
    )
    with serve(create_emulator_app(small)) as emulator:
        gw = make_gateway([emulator.url])
        response = gw.ask({"video": b64(clip("mp4-h264")), "prompt": PROMPT, "max_tokens": 8})
        assert (response.status_code, response.json()["code"]) == (400, 40006), response.text
        assert str(expected.visual_tokens) in response.json()["message"]
        assert emulator_requests(emulator, limit=10) == []


def test_images_and_a_clip_in_one_chat(gateway, emulator) -> None:
    """The OpenAI route takes image parts beside the clip (vLLM does); both are in the cache key."""
    video = video_data_uri(clip("mp4-h264"))

    def ask(photo: bytes) -> httpx.Response:
        messages = _video_messages(video)
        messages[0]["content"].insert(0, {"type": "image_url", "image_url": {"url": image_data_uri(photo)}})
        body = {"model": MODEL, "messages": messages, "max_tokens": 400, "temperature": 0}
        return gateway.post("/v1/chat/completions", json=body)

    photo, other = photo_jpeg(320, 240), photo_jpeg(240, 320)  # (its noise differs on every call)
    first = ask(photo)
    assert first.status_code == 200, first.text
    [sent] = emulator_requests(emulator)
    parts = sent["body"]["messages"][0]["content"]
    assert [part["type"] for part in parts] == ["image_url", "video_url", "text"]
    assert parts[1]["video_url"]["url"] == prepared("mp4-h264").data_uri
    assert "1 image:" in first.json()["choices"][0]["message"]["content"]
    assert ask(photo).headers["x-cache"] == "HIT"
    assert ask(other).headers["x-cache"] == "MISS"  # same clip, another photo
