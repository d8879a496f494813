"""Calling the gateway from Python with httpx: downscale, ask, retry politely, stream.

    VLGW_URL=http://127.0.0.1:8080 VLGW_KEY=vlgw_... VLGW_IMAGE=photo.jpg python client_httpx.py

Prints one JSON line per call: the whole answer, then the streamed one.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
from PIL import Image, ImageOps

FALLBACK = "暂时没看清楚,换个角度再试试?"  # shown to the user whenever there is no usable answer
RETRYABLE = {429, 503}
MAX_ATTEMPTS = 3
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # the mobile guide's 10 s for a whole answer
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0, read=30.0)  # read = the longest gap between events


def downscale(path: str, long_side: int = 1280, max_pixels: int = 1_310_720, quality: int = 85) -> str:
    """The photo as a JPEG data URI, at most ``long_side`` px and ~1.3 MP: less upload, same answer.

    Phones store the sensor's pixels and an EXIF Orientation tag; re-encoding drops the tag, so the
    pixels are turned upright first (``exif_transpose``), or the model sees the photo sideways.
    """
    with Image.open(path) as original:
        img = (ImageOps.exif_transpose(original) or original).convert("RGB")
        scale = min(1.0, long_side / max(img.size), (max_pixels / (img.width * img.height)) ** 0.5)
        if scale < 1.0:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def json_body(response: httpx.Response) -> dict[str, object]:
    """The gateway's JSON, or a stand-in when something else answered (a proxy's HTML 502 page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"code": response.status_code * 100 + 99, "message": f"HTTP {response.status_code}, not JSON"}
    return body


def retry_delay(response: httpx.Response, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when this answer is final."""
    if response.status_code not in RETRYABLE or attempt == MAX_ATTEMPTS:
        return None
    try:
        retry_after = float(response.headers.get("retry-after", 0))
    except ValueError:
        retry_after = 0.0
    return min(retry_after or 0.5 * 2**attempt, 10.0) + random.uniform(0, 0.25)


def post_with_retry(client: httpx.Client, body: dict[str, object]) -> httpx.Response:
    """POST, retrying 429/503 after Retry-After (or a jittered backoff) with one Idempotency-Key."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}  # the same key on every retry: at most one answer
    for attempt in range(1, MAX_ATTEMPTS + 1):
        response = client.post("/v1/qwen-vl", json=body, headers=headers, timeout=TIMEOUT)
        delay = retry_delay(response, attempt)
        if delay is None:
            return response
        time.sleep(delay)
    raise AssertionError("unreachable")


def ask(client: httpx.Client, image: str, prompt: str) -> dict[str, object]:
    try:
        body = json_body(post_with_retry(client, {"image": image, "prompt": prompt, "max_tokens": 200}))
    except httpx.HTTPError as exc:  # timeout, no network
        return {"code": -1, "text": FALLBACK, "error": type(exc).__name__}
    if body.get("code") != 0 or not body.get("text"):
        # 40009 carries a hint ("光线太暗,请在明亮处重拍 / too dark ...") worth showing as is.
        return {
            "code": body.get("code"),
            "text": body.get("hint") or FALLBACK,
            "message": body.get("message"),
        }
    return {"code": 0, "text": body["text"], "request_id": body["request_id"], "usage": body["usage"]}


def sse_events(response: httpx.Response) -> Iterator[dict[str, object] | None]:
    """Decoded ``data:`` events; None for ``[DONE]``. Comment lines (keep-alives) are skipped."""
    for line in response.iter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            yield None if payload == "[DONE]" else json.loads(payload)


def ask_streaming(client: httpx.Client, image: str, prompt: str) -> dict[str, object]:
    body = {"image": image, "prompt": prompt, "max_tokens": 200, "stream": True}
    text: list[str] = []
    chunks, final = 0, None
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with client.stream("POST", "/v1/qwen-vl", json=body, timeout=STREAM_TIMEOUT) as response:
                if response.status_code == 200:
                    chunks, final = read_stream(response, text)
                    break
                response.read()
                delay = retry_delay(response, attempt)
                if delay is None:  # errors before the stream starts are plain JSON answers
                    return {"code": json_body(response).get("code"), "text": FALLBACK}
            time.sleep(delay)
    except httpx.HTTPError as exc:
        return {"code": -1, "text": "".join(text) or FALLBACK, "error": type(exc).__name__}
    if final is None or final.get("code") != 0:
        return {"code": (final or {}).get("code", -1), "text": "".join(text) or FALLBACK}
    return {"code": 0, "text": "".join(text), "chunks": chunks, "usage": final.get("usage")}


def read_stream(response: httpx.Response, text: list[str]) -> tuple[int, dict[str, object] | None]:
    """Append the text deltas; return their count and the final event (None: the stream was cut)."""
    chunks, final = 0, None
    for event in sse_events(response):
        if event is None:
            break
        if "text" in event and "code" not in event:
            text.append(str(event["text"]))  # a real app appends this to the label on screen
            chunks += 1
        else:
            final = event  # {"code": 0, "usage": ..., "finish_reason": ...} or an error event
    return chunks, final


def main() -> int:
    url, key, path = os.environ["VLGW_URL"], os.environ["VLGW_KEY"], os.environ["VLGW_IMAGE"]
    image = downscale(path)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        answer = ask(client, image, "请描述这张图片的内容")
        print(json.dumps({"mode": "answer", **answer}, ensure_ascii=False))
        streamed = ask_streaming(client, image, "请描述这张图片的内容")
        print(json.dumps({"mode": "stream", **streamed}, ensure_ascii=False))
    return 0 if answer["code"] == 0 and streamed["code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
