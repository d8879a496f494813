"""The API reference page (``GET /docs``): one self-contained HTML page rendered from the OpenAPI
schema on the server. No script or style is fetched from anywhere, so it works on networks with
no internet access; the machine-readable schema stays at ``/schema/openapi.json``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from gateway.api.openapi import ANSWER_NOTES, EXAMPLES, error_table, struct_schema
from gateway.api.schemas import AppError

NOTES = {
    "qwenVl": 'With <code>"stream": true</code> the answer is Server-Sent Events: '
    '<code>data: {"text": "..."}</code> deltas, one final <code>data: {"code": 0, "usage": {...}, '
    '"finish_reason": ..., "request_id": ...}</code>, then <code>data: [DONE]</code>. An error after the '
    'stream began arrives as one <code>data: {"code": &lt;nonzero&gt;, "message": ...}</code> event.',
    "chatCompletions": "The OpenAI chat-completions wire format: the official OpenAI SDKs work "
    "unchanged with <code>base_url=&lt;gateway&gt;/v1</code>. Errors use the OpenAI envelope "
    '<code>{"error": {"message", "type", "param", "code"}}</code> with the numeric code below.',
}
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",sans-serif;
margin:0;color:#1d232b;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:20px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c5d0db}main{max-width:980px;margin:0 auto;padding:16px 32px 48px}
nav ul{list-style:none;padding:0;columns:2}nav li{margin:2px 0}a{color:#1a5fb4}
section.op{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:16px 20px;margin:18px 0}
.method{display:inline-block;min-width:52px;text-align:center;border-radius:4px;padding:1px 8px;
color:#fff;font:600 13px ui-monospace,monospace;margin-right:8px}
.get{background:#2b7a3d}.post{background:#1a5fb4}
.path{font:600 16px ui-monospace,monospace}table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #e4e8ec;text-align:left;padding:5px 8px;vertical-align:top;font-size:14px}
th{background:#f0f3f6}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
pre{background:#f0f3f6;padding:10px 12px;border-radius:6px;overflow-x:auto}.req{color:#b5361d}
"""


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return " | ".join(_type(sub) for sub in node[key] if sub.get("type") != "null")
    if node.get("type") == "object" and "additionalProperties" in node and "properties" not in node:
        return "object"
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    if node.get("type") == "array":
        return f"list of {_type(node.get('items', {}))}"
    return str(node.get("type", "any"))


def _limits(node: dict[str, Any]) -> str:
    subs = [node, *node.get("anyOf", [])]
    parts = []
    for sub in subs:
        for key, label in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "min length "),
                           ("maxLength", "max length ")):  # fmt: skip
            if key in sub:
                parts.append(f"{label}{sub[key]}")
    if node.get("default") is not None:
        parts.append(f"default {json.dumps(node['default'])}")
    return ", ".join(parts)


def _fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = []
    for name, node in schema.get("properties", {}).items():
        flag = ' <span class="req">required</span>' if name in required else ""
        rows.append(
            f"<tr><td><code>{escape(name)}</code>{flag}</td><td><code>{escape(_type(node))}</code></td>"
            f"<td>{escape(node.get('description', ''))}</td><td>{escape(_limits(node))}</td></tr>"
        )
    head = "<tr><th>field</th><th>type</th><th>meaning</th><th>limits</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else ""


def _body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema: dict[str, Any] | None = content.get("schema")
    return schema if schema and schema.get("properties") else None


def _answer_schema(op: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    """The 200 JSON answer's component, its fields described from ``ANSWER_NOTES``."""
    content = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    ref = str(content.get("schema", {}).get("$ref", ""))
    node = components.get(ref.rsplit("/", 1)[-1]) if ref else None
    if not node or not node.get("properties"):
        return None
    props = {
        name: {**prop, "description": prop.get("description") or ANSWER_NOTES.get(name, "")}
        for name, prop in node["properties"].items()
    }
    return {**node, "properties": props}


def _operation(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> str:
    op_id = op.get("operationId", f"{method}-{path}")
    parts = [
        f'<section class="op" id="{escape(op_id)}"><h2><span class="method {method}">{method.upper()}</span>'
        f'<span class="path">{escape(path)}</span></h2><p><b>{escape(op.get("summary", ""))}</b></p>'
    ]
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    params = op.get("parameters") or []
    if params:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))})</td>"
            f"<td><code>{escape(_type(p.get('schema', {})))}</code></td>"
            f"<td>{escape(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(
            f"<h3>Parameters</h3><table><tr><th>name</th><th>type</th><th>meaning</th></tr>{rows}</table>"
        )
    body = _body_schema(op)
    if body:
        parts.append("<h3>Request body (JSON)</h3>" + _fields(body))
    if op_id in EXAMPLES:
        example = json.dumps(EXAMPLES[op_id], ensure_ascii=False, indent=2)
        curl = (
            f'curl -sS "$GATEWAY{path}" -H "Authorization: Bearer $KEY" '
            "-H 'Content-Type: application/json' -d @body.json"
        )
        parts.append(f"<h3>Example</h3><pre>{escape(example)}</pre><pre>{escape(curl)}</pre>")
    answer = _answer_schema(op, components)
    if answer is not None:
        parts.append("<h3>Answer (HTTP 200)</h3>" + _fields(answer))
    if op_id in NOTES:
        parts.append(f"<p>{NOTES[op_id]}</p>")
    parts.append("</section>")
    return "".join(parts)


def render_docs_page(schema: dict[str, Any]) -> str:
    """The whole reference page for an OpenAPI schema (as ``OpenAPI.to_schema()`` returns it)."""
    info = schema.get("info", {})
    ops = [
        (path, method, op)
        for path, item in schema.get("paths", {}).items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]
    toc = "".join(
        f'<li><a href="#{escape(op.get("operationId", ""))}">{method.upper()} {escape(path)}</a> '
        f"— {escape(op.get('summary', ''))}</li>"
        for path, method, op in ops
    )
    errors_rows = "".join(
        f"<tr><td><code>{code}</code></td><td>{status}</td><td>{escape(name)}</td><td>{escape(text)}</td></tr>"
        for code, status, name, text in error_table()
    )
    error_fields = _fields(struct_schema(AppError, ANSWER_NOTES))
    title, version = escape(info.get("title", "API")), escape(str(info.get("version", "")))
    components = schema.get("components", {}).get("schemas", {})
    operations = "".join(_operation(path, method, op, components) for path, method, op in ops)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">
<title>{title} API reference</title>
<style>{STYLE}</style></head><body>
<header><h1>{title} API reference</h1><p>version {version} · machine-readable schema:
<a style="color:#fff" href="/schema/openapi.json">/schema/openapi.json</a></p></header>
<main><p>Every call needs an API key: <code>Authorization: Bearer vlgw_...</code>
(or <code>X-Api-Key</code>). Every answer carries <code>X-Request-Id</code>; quote it in
<code>POST /v1/feedback</code> and bug reports. Errors are JSON
<code>{{"code", "message", "request_id"}}</code>; 429 and 503 add <code>Retry-After</code>.</p>
<nav><h2>Operations</h2><ul>{toc}<li><a href="#errors">Error codes</a></li></ul></nav>
{operations}
<section class="op" id="errors"><h2>Error codes</h2><p><code>code</code> = HTTP status × 100 + n,
so a client can branch on either. Error body fields:</p>{error_fields}
<table><tr><th>code</th><th>HTTP</th><th>name</th><th>when</th></tr>{errors_rows}</table></section>
</main></body></html>"""
