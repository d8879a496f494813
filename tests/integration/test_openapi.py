"""The served ``/schema/openapi.json`` tells the truth: every answer a running gateway gives (JSON,
each Server-Sent Event, each error) validates against the schema the document names for its
route, status and content type.

Real parts: the gateway and the emulator on loopback, a key made with ``vlgw keys create``, httpx.
Input image: ``tests.images.photo_jpeg`` (generated; the schema does not depend on its content).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import GatewayUnderTest, create_key, set_faults
from tests.servers import ThreadedServer

DOC_URI = "urn:vlgw:openapi"


def pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class ServedSchema:
    """The document a gateway serves, and a validator for any (route, status, media type)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry: Registry[Any] = Registry().with_resource(
            DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
        )

    def check(self, path: str, method: str, status: int, media: str, instance: Any) -> None:
        responses = self.doc["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path} answered {status}, not documented"
        content = responses[str(status)]["content"]
        assert media in content, f"{method.upper()} {path} {status}: {media} not documented ({list(content)})"
        ref = f"{DOC_URI}#/" + pointer(
            "paths", path, method, "responses", str(status), "content", media, "schema"
        )
        validator = Draft202012Validator({"$ref": ref}, registry=self.registry)
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not problems, f"{method.upper()} {path} {status} {media}: {problems}\n{instance}"

    def answer(self, path: str, method: str, response: httpx.Response) -> Any:
        """Validate a JSON answer (or each event of a stream); return the decoded body or events."""
        assert response.headers.get("x-request-id"), "every answer carries X-Request-Id"
        media = response.headers["content-type"].split(";")[0]
        if media == "text/event-stream":
            events = [json.loads(line[6:]) for line in sse_data(response.text) if line != "data: [DONE]"]
            assert events and response.text.rstrip().endswith("data: [DONE]")
            for event in events:
                self.check(path, method, response.status_code, media, event)
            return events
        body = response.json()
        self.check(path, method, response.status_code, media, body)
        return body


def sse_data(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("data: ")]


@pytest.fixture
def served(
    emulator: ThreadedServer, make_gateway: Callable[..., GatewayUnderTest], tmp_path: Path
) -> tuple[GatewayUnderTest, ServedSchema]:
    gw = make_gateway([emulator.url], auth_disabled=False)
    gw.key = create_key(tmp_path, "openapi-test")
    gw.client.headers["authorization"] = f"Bearer {gw.key}"
    schema = gw.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    return gw, ServedSchema(schema.json())


def test_served_document_is_valid_openapi_3_1(served: tuple[GatewayUnderTest, ServedSchema]) -> None:
    _, schema = served
    assert list(OpenAPIV31SpecValidator(schema.doc).iter_errors()) == []
    # The checks below are live: an answer that is not what the schema says is caught.
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    with pytest.raises(AssertionError, match="text"):
        schema.check("/v1/qwen-vl", "post", 200, "application/json", {"code": 0, "usage": usage})
    with pytest.raises(AssertionError, match="not documented"):
        schema.check("/v1/models", "get", 418, "application/json", {})


def test_app_route_answers_match_the_schema(served: tuple[GatewayUnderTest, ServedSchema]) -> None:
    gw, schema = served
    image = data_uri(photo_jpeg(640, 480))
    body = {"image": image, "prompt": "What is in this picture?", "max_tokens": 32}
    answer = schema.answer("/v1/qwen-vl", "post", gw.ask(body))
    assert answer["code"] == 0 and answer["text"]
    streamed = gw.ask({**body, "stream": True}, headers={"cache-control": "no-cache"})
    events = schema.answer("/v1/qwen-vl", "post", streamed)
    assert events[-1]["code"] == 0 and any("text" in e for e in events)
    refused = gw.ask({"image": image, "prompt": "?", "max_tokens": 10**9})
    assert refused.status_code == 400 and schema.answer("/v1/qwen-vl", "post", refused)["code"] == 40007
    bad = gw.ask({"image": image, "promt": "typo"})
    assert schema.answer("/v1/qwen-vl", "post", bad)["code"] == 40001
    anonymous = httpx.post(f"{gw.url}/v1/qwen-vl", json=body, timeout=30)
    assert schema.answer("/v1/qwen-vl", "post", anonymous)["code"] == 40101

    feedback = {"request_id": answer["request_id"], "verdict": "bad", "expected": "a photo"}
    accepted = schema.answer("/v1/feedback", "post", gw.post("/v1/feedback", json=feedback))
    assert accepted["request_id"] == answer["request_id"]
    unknown = gw.post("/v1/feedback", json={**feedback, "request_id": "no-such-request"})
    assert unknown.status_code == 404 and schema.answer("/v1/feedback", "post", unknown)["code"] == 40401
    usage = schema.answer("/v1/usage", "get", gw.client.get("/v1/usage", params={"days": 2}))
    assert len(usage["days"]) == 2
    not_a_number = gw.client.get("/v1/usage", params={"days": "many"})
    assert schema.answer("/v1/usage", "get", not_a_number)["code"] == 40001
    presets = schema.answer("/v1/presets", "get", gw.client.get("/v1/presets"))
    assert presets["presets"]


def test_openai_routes_answers_match_the_schema(served: tuple[GatewayUnderTest, ServedSchema]) -> None:
    gw, schema = served
    models = schema.answer("/v1/models", "get", gw.client.get("/v1/models"))
    model = models["data"][0]["id"]
    content = [
        {"type": "image_url", "image_url": {"url": data_uri(photo_jpeg(320, 240, seed=2))}},
        {"type": "text", "text": "What is this?"},
    ]
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 24}
    completion = schema.answer("/v1/chat/completions", "post", gw.post("/v1/chat/completions", json=body))
    assert completion["choices"][0]["message"]["content"]
    streamed = gw.post(
        "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    chunks = schema.answer("/v1/chat/completions", "post", streamed)
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    missing = gw.post("/v1/chat/completions", json={**body, "model": "no-such-model"})
    assert missing.status_code == 404
    assert schema.answer("/v1/chat/completions", "post", missing)["error"]["code"] == 40401
    out_of_range = gw.post("/v1/chat/completions", json={**body, "max_tokens": 0})
    assert schema.answer("/v1/chat/completions", "post", out_of_range)["error"]["code"] == 40007


def test_operations_answers_match_the_schema(served: tuple[GatewayUnderTest, ServedSchema]) -> None:
    gw, schema = served
    assert schema.answer("/healthz", "get", gw.client.get("/healthz"))["status"] == "ok"
    assert schema.answer("/readyz", "get", gw.client.get("/readyz"))["ready"] in (True, False)
    metrics = gw.client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "text/plain" in schema.doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    page = gw.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "text/html" in schema.doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]


def test_failures_mid_stream_and_upstream_match_the_schema(
    served: tuple[GatewayUnderTest, ServedSchema], emulator: ThreadedServer
) -> None:
    """Faults from the emulator's fault knobs: an error event after the stream began, a failing upstream."""
    gw, schema = served
    image = data_uri(photo_jpeg(320, 240, seed=3))
    model = gw.client.get("/v1/models").json()["data"][0]["id"]
    chat = {
        "model": model,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 24,
        "stream": True,
    }
    set_faults(emulator, stream_error_after_chunks=2)
    events = schema.answer("/v1/qwen-vl", "post", gw.ask({"image": image, "prompt": "?", "stream": True}))
    assert events[-1]["code"] != 0 and events[-1]["message"]
    chunks = schema.answer("/v1/chat/completions", "post", gw.post("/v1/chat/completions", json=chat))
    assert chunks[-1]["error"]["code"] != 0
    set_faults(emulator, stream_error_after_chunks=None, error_every=1, error_status=500)
    failed = gw.ask({"image": image, "prompt": "and now?"}, headers={"cache-control": "no-cache"})
    assert failed.status_code >= 500 and schema.answer("/v1/qwen-vl", "post", failed)["code"] >= 50001
    failed = gw.post("/v1/chat/completions", json={**chat, "stream": False})
    assert failed.status_code >= 500
    assert schema.answer("/v1/chat/completions", "post", failed)["error"]["code"] >= 50001
