"""``/schema/openapi.json`` as Litestar builds it for ``create_app``: valid OpenAPI 3.1, every served
route in it, typed bodies, answers and error envelopes, the bearer scheme on ``/v1/*``.

Input: the document of an app built from default settings (no server needed to build it; the
integration tests read the same document from a running gateway).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from litestar import Litestar
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway import errors
from gateway.app import create_app
from gateway.settings import Settings

METHODS = ("get", "post", "put", "patch", "delete")
OPENAI_ROUTES = {"/v1/chat/completions", "/v1/models"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("data"))  # type: ignore[call-arg]
    return create_app(settings)


@pytest.fixture(scope="module")
def doc(app: Litestar) -> dict[str, Any]:
    return app.openapi_schema.to_schema()


def ref_name(node: dict[str, Any]) -> str:
    return str(node["$ref"]).rsplit("/", 1)[-1]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validator = OpenAPIV31SpecValidator(doc)
    assert list(validator.iter_errors()) == []
    # The validator is not a formality: a broken copy of the same document is refused.
    broken = copy.deepcopy(doc)
    broken["paths"]["/v1/qwen-vl"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "no-such-type"
    }
    assert list(OpenAPIV31SpecValidator(broken).iter_errors())


def test_every_served_route_is_documented(app: Litestar, doc: dict[str, Any]) -> None:
    served = {
        (route.path, method.lower())
        for route in app.routes
        if not route.path.startswith("/schema")  # the document itself
        for method in getattr(route, "methods", ())
        if method.lower() in METHODS
    }
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served, "the app serves no routes?"
    assert served - documented == set()
    for expected in ("/v1/qwen-vl", "/v1/chat/completions", "/v1/models", "/v1/presets", "/v1/feedback",
                     "/v1/usage", "/healthz", "/readyz", "/metrics", "/docs"):  # fmt: skip
        assert expected in doc["paths"], expected


def test_v1_routes_name_the_bearer_scheme(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path, method, op in operations(doc):
        if path.startswith("/v1/"):
            assert op.get("security") == [{"bearerAuth": []}], (path, method)
        elif path in ("/healthz", "/readyz", "/docs"):
            assert "security" not in op, path


def test_every_answer_is_typed(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        assert op.get("operationId"), (path, method)
        ok = op["responses"]["200"]
        assert ok.get("content"), (path, method)
        for media, content in ok["content"].items():
            assert content["schema"] not in ({}, None), (path, method, media)
    components = doc["components"]["schemas"]
    assert set(components["AppAnswer"]["required"]) >= {"text", "usage", "request_id", "model"}
    assert "code" in components["AppAnswer"]["properties"]


def test_errors_use_the_contract_envelopes_with_their_codes(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    assert set(components["AppError"]["required"]) == {"code", "message", "request_id"}
    assert {"retry_after", "hint", "reason", "param"} <= set(components["AppError"]["properties"])
    detail = components[ref_name(components["OpenAIError"]["properties"]["error"])]
    assert set(detail["required"]) == {"message", "type", "param", "code"}
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or (path == "/readyz" and status == "503"):
                continue
            envelope = ref_name(response["content"]["application/json"]["schema"])
            assert envelope == ("OpenAIError" if path in OPENAI_ROUTES else "AppError"), (path, status)
            for err in errors.ALL_ERRORS:
                if err.status == int(status):
                    assert str(err.code) in response["description"], (path, status, err.code)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], (path, status)
    # The app route may answer every HTTP status the contract's codes use (404/405 are not its own).
    app_statuses = {int(s) for s in doc["paths"]["/v1/qwen-vl"]["post"]["responses"]}
    assert {e.status for e in errors.ALL_ERRORS} - {404, 405} <= app_statuses


def test_app_route_body_answer_and_event_stream(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/v1/qwen-vl"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    fields = set(body["properties"])
    assert {"image", "video", "prompt", "preset", "max_tokens", "temperature", "top_p", "stream",
            "precheck"} <= fields  # fmt: skip
    assert body["additionalProperties"] is False
    # A union generators can type (Kotlin and Swift make an empty class of anyOf [string, array, null]).
    assert body["properties"]["image"]["oneOf"] == [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}},
    ]
    content = op["responses"]["200"]["content"]
    assert ref_name(content["application/json"]["schema"]) == "AppAnswer"
    events = content["text/event-stream"]["schema"]
    assert {shape["title"] for shape in events["anyOf"]} == {"AppStreamText", "AppStreamEnd", "AppError"}
    assert "[DONE]" in events["description"]


def test_chat_completions_body_answer_and_chunks(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/v1/chat/completions"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"model", "messages"}
    assert {"max_tokens", "temperature", "top_p", "stream", "stream_options"} <= set(body["properties"])
    message = body["properties"]["messages"]["items"]
    parts = next(s for s in message["properties"]["content"]["oneOf"] if s.get("type") == "array")["items"]
    kinds = {value for part in parts["oneOf"] for value in part["properties"]["type"]["enum"]}
    assert kinds == {"text", "image_url", "video_url"}
    content = op["responses"]["200"]["content"]
    assert ref_name(content["application/json"]["schema"]) == "ChatCompletion"
    events = content["text/event-stream"]["schema"]
    assert {shape["title"] for shape in events["anyOf"]} == {"ChatCompletionChunk", "OpenAIError"}


def test_models_presets_usage_feedback_and_operations(doc: dict[str, Any]) -> None:
    def answer_of(path: str, method: str = "get") -> str:
        return ref_name(
            doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        )

    assert answer_of("/v1/models") == "ModelList"
    model_list = doc["components"]["schemas"]["ModelList"]
    assert ref_name(model_list["properties"]["data"]["items"]) == "Model"
    assert answer_of("/v1/presets") == "PresetList"
    assert answer_of("/v1/usage") == "UsageReport"
    assert answer_of("/v1/feedback", "post") == "FeedbackAccepted"
    feedback = doc["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(feedback["required"]) == {"request_id", "verdict"}
    assert answer_of("/healthz") == "Health"
    assert answer_of("/readyz") == "Readiness"
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "text/html" in doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]


def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    """Generated clients name their functions after them."""
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
