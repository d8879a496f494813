"""The client examples in docs/clients/examples run against a real gateway and get answers."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.images import photo_jpeg
from tests.integration.test_devex import create_key
from tests.servers import answer, read_request_body, run_lifespan, serve

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "clients" / "examples"
KOTLIN_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "clients" / "kotlin"
NODE = shutil.which("node")
KOTLINC = Path(os.environ.get("VLGW_TOOLS", Path.home() / ".cache" / "vlgw-tools")) / (
    "kotlin/node_modules/kotlin-compiler/bin/kotlinc"
)
JARS = ["/usr/share/java/okhttp.jar", "/usr/share/java/okio.jar", "/usr/share/java/com.android.json.jar"]


@pytest.fixture(scope="session")
def kotlin_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Kotlin guide compiled as an app would build it: OkHttpTransport.java (javac) against
    OkHttp, VisionClient.kt + Main.kt (kotlinc 2.4) against it and Android's org.json."""
    if not KOTLINC.exists() or not all(Path(jar).exists() for jar in JARS) or shutil.which("javac") is None:
        pytest.skip("kotlinc, javac or the OkHttp/org.json jars are missing (scripts/install-test-deps.sh)")
    out = tmp_path_factory.mktemp("kotlin")
    classes = out / "classes"
    javac = subprocess.run(
        ["javac", "-Xlint:all", "-Werror", "-d", str(classes), "-cp", ":".join(JARS),
         *map(str, sorted(KOTLIN_GUIDE.glob("*.java")))],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert javac.returncode == 0, javac.stderr
    jar = out / "vlgw.jar"
    kotlinc = subprocess.run(
        [str(KOTLINC), "-Werror", *map(str, sorted(KOTLIN_GUIDE.glob("*.kt"))), "-cp",
         ":".join([str(classes), *JARS]), "-include-runtime", "-d", str(jar)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert kotlinc.returncode == 0, kotlinc.stderr
    return ["java", "-cp", ":".join([str(jar), str(classes), *JARS]), "vlgw.MainKt"]


def _command(example: str, request: pytest.FixtureRequest | None = None) -> list[str]:
    if example == "kotlin":
        assert request is not None
        command: list[str] = request.getfixturevalue("kotlin_client")
        return command
    if example.endswith(".mjs"):
        if NODE is None:
            pytest.skip("node (Node.js 20+) is not installed")
        return [NODE, str(EXAMPLES / example)]
    return [sys.executable, str(EXAMPLES / example)]


@pytest.mark.parametrize("example", ["client_httpx.py", "client_openai.py", "client.mjs", "kotlin"])
def test_example_gets_an_answer_and_a_stream(
    example, make_gateway, emulator, tmp_path: Path, request
) -> None:
    # Cache off: the examples ask the same question twice (JSON, then streamed), and the second
    # would be a cache hit replayed in one event; this test is about streaming reaching the client.
    gw = make_gateway([emulator.url], auth_disabled=False, cache_enabled=False)
    key = create_key(tmp_path, "example-app")
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(2400, 1800, seed=11))  # bigger than the examples upload
    result = subprocess.run(
        _command(example, request),
        env={"VLGW_URL": gw.url, "VLGW_KEY": key, "VLGW_IMAGE": str(image), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    answer, streamed = (next(line for line in lines if line["mode"] == mode) for mode in ("answer", "stream"))
    assert answer["code"] == 0 and answer["text"], answer
    assert streamed["code"] == 0 and streamed["text"] and streamed["chunks"] > 1, streamed


def test_wrong_key_shows_the_fallback_text(make_gateway, emulator, tmp_path: Path) -> None:
    gw = make_gateway([emulator.url], auth_disabled=False)
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(seed=12))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "client_httpx.py")],
        env={"VLGW_URL": gw.url, "VLGW_KEY": "vlgw_wrong", "VLGW_IMAGE": str(image), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    answer = json.loads(result.stdout.splitlines()[0])
    assert (
        result.returncode == 1
        and answer["code"] == 40101
        and answer["text"] == "暂时没看清楚,换个角度再试试?"
    )


class FakeFrontend:
    """What stands between an app and the gateway when things go wrong, as a real HTTP server on
    loopback: a proxy's HTML 502 page, or a gateway shedding load (429 + Retry-After, then an answer).
    A fault the real gateway cannot be made to produce on demand; everything else runs for real."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: list[tuple[float, str | None, bool]] = []  # (time, Idempotency-Key, stream)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        body = await read_request_body(receive)
        headers = dict(scope["headers"])
        stream = b'"stream": true' in body or b'"stream":true' in body
        key = headers.get(b"idempotency-key", b"").decode() or None
        self.seen.append((time.monotonic(), key, stream))
        if self.mode == "html502":
            page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            await answer(send, 502, [(b"content-type", b"text/html")], page)
        elif len([s for s in self.seen if s[2] == stream]) == 1:  # first try of each kind: shed
            refusal = {"code": 42901, "message": "rate limit exceeded", "request_id": "x", "retry_after": 1}
            await answer(
                send,
                429,
                [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                json.dumps(refusal).encode(),
            )
        elif stream:
            events = [
                {"text": "hello"},
                {"text": " there"},
                {"code": 0, "usage": {}, "finish_reason": "stop", "request_id": "r"},
            ]
            sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
            await answer(send, 200, [(b"content-type", b"text/event-stream")], sse)
        else:
            reply = {"code": 0, "text": "hello", "usage": {}, "request_id": "r"}
            await answer(send, 200, [(b"content-type", b"application/json")], json.dumps(reply).encode())


def run_example(
    example: str, url: str, key: str, image: Path, request: pytest.FixtureRequest | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"VLGW_URL": url, "VLGW_KEY": key, "VLGW_IMAGE": str(image), "PATH": "/usr/bin:/bin"}
    return subprocess.run(_command(example, request), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("example", ["client_httpx.py", "client.mjs", "kotlin"])
def test_a_proxys_html_error_page_is_an_error_not_a_crash(example, tmp_path: Path, request) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(seed=13))
    with serve(FakeFrontend("html502")) as proxy:
        result = run_example(example, proxy.url, "vlgw_any", image, request)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["code"] for line in lines] == [50299, 50299], result.stdout
    assert all(line["text"] == "暂时没看清楚,换个角度再试试?" for line in lines)


@pytest.mark.parametrize("example", ["client_httpx.py", "client.mjs", "kotlin"])
def test_429_is_retried_after_retry_after_with_the_same_idempotency_key(
    example, tmp_path: Path, request
) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_jpeg(seed=14))
    frontend = FakeFrontend("shed_once")
    with serve(frontend) as server:
        result = run_example(example, server.url, "vlgw_any", image, request)
    assert result.returncode == 0, result.stdout + result.stderr
    for stream in (False, True):
        tries = [seen for seen in frontend.seen if seen[2] is stream]
        assert len(tries) == 2
        assert tries[1][0] - tries[0][0] >= 0.9  # waited for Retry-After (1 s), not hammered
        if not stream:
            assert tries[0][1] is not None and tries[0][1] == tries[1][1]


def test_python_example_keeps_the_photos_exif_orientation(make_gateway, emulator, tmp_path: Path) -> None:
    """A phone photo stored landscape with EXIF Orientation 6 (rotate 90°) must reach the model upright."""
    gw = make_gateway([emulator.url], auth_disabled=False)
    key = create_key(tmp_path, "exif-app")
    stored = Image.open(io.BytesIO(photo_jpeg(1600, 1200, seed=15)))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = tmp_path / "portrait.jpg"
    stored.save(image, "JPEG", exif=exif)
    result = run_example("client_httpx.py", gw.url, key, image)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout.splitlines()[0])
    width, height = map(int, re.search(r"(\d+)x(\d+)", answer["text"]).groups())
    assert height > width, answer["text"]  # the emulator describes the image it received
