"""Calling the gateway with the official OpenAI SDK (``pip install openai``): nothing gateway-specific.

    VLGW_URL=http://127.0.0.1:8080 VLGW_KEY=vlgw_... VLGW_IMAGE=photo.jpg python client_openai.py

The SDK already retries 429/503 honouring Retry-After (``max_retries``). Prints one JSON line per call.
"""

from __future__ import annotations

import base64
import json
import os
import sys

import openai

FALLBACK = "暂时没看清楚,换个角度再试试?"


def main() -> int:
    url, key, path = os.environ["VLGW_URL"], os.environ["VLGW_KEY"], os.environ["VLGW_IMAGE"]
    with open(path, "rb") as f:  # downscale first in a real app (see client_httpx.py)
        image = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode("ascii")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, timeout=10.0, max_retries=2)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image}},
                {"type": "text", "text": "请描述这张图片的内容"},
            ],
        }
    ]
    try:
        done = client.chat.completions.create(model="qwen-vl", messages=messages, max_tokens=200)  # type: ignore[arg-type]
        text = done.choices[0].message.content or FALLBACK
        print(json.dumps({"mode": "answer", "code": 0, "text": text}, ensure_ascii=False))
    except openai.APIError as exc:
        # The gateway's numeric code rides in the OpenAI envelope: {"error": {..., "code": 42901}}.
        code = exc.body.get("code") if isinstance(exc.body, dict) else None
        print(json.dumps({"mode": "answer", "code": code, "text": FALLBACK}, ensure_ascii=False))
        return 1

    parts: list[str] = []
    stream = client.with_options(timeout=60.0).chat.completions.create(
        model="qwen-vl",
        messages=messages,
        max_tokens=200,
        stream=True,  # type: ignore[arg-type]
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    print(
        json.dumps(
            {"mode": "stream", "code": 0, "text": "".join(parts), "chunks": len(parts)}, ensure_ascii=False
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
