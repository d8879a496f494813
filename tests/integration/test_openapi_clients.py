"""Clients generated from the served ``/schema/openapi.json`` work against a running gateway.

Real parts: the gateway and the emulator on loopback, a key made with ``vlgw keys create``, and the
generators app developers use: openapi-python-client (PyPI, a dev dependency), openapi-typescript
with openapi-fetch and typescript (npm, installed by scripts/install-test-deps.sh into
``$VLGW_TOOLS/ts``), and openapi-generator (its jar is inside the ``openapi-generator-cli`` wheel;
it needs a Java runtime) for Kotlin (its models compiled with the npm kotlin-compiler against
Debian's gson and run) and Swift (generated only: no Swift toolchain here). Input image:
``tests.images.photo_jpeg`` (generated; the schema does not depend on its content).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import GatewayUnderTest, create_key
from tests.servers import ThreadedServer

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TS_TOOLS = Path(os.environ.get("VLGW_TOOLS", Path.home() / ".cache" / "vlgw-tools")) / "ts"
TS_MODULES = TS_TOOLS / "node_modules"
NODE = shutil.which("node")
JAVA = shutil.which("java")
needs_ts = pytest.mark.skipif(
    NODE is None
    or not (TS_MODULES / "openapi-typescript").is_dir()
    or not (TS_MODULES / "typescript").is_dir(),
    reason=f"node, or openapi-typescript/openapi-fetch/typescript in {TS_TOOLS}, missing "
    "(scripts/install-test-deps.sh installs them from npm)",
)
KOTLINC = Path(os.environ.get("VLGW_TOOLS", Path.home() / ".cache" / "vlgw-tools")) / (
    "kotlin/node_modules/kotlin-compiler/bin/kotlinc"
)
GSON = Path("/usr/share/java/gson.jar")
KOTLIN_MAIN = Path(__file__).parent / "openapi_clients" / "Main.kt"
needs_kotlin = pytest.mark.skipif(
    not KOTLINC.is_file() or not GSON.is_file() or JAVA is None,
    reason=f"{KOTLINC} (npm kotlin-compiler), {GSON} (Debian libgoogle-gson-java) or java missing "
    "(scripts/install-test-deps.sh installs them)",
)
needs_java = pytest.mark.skipif(
    JAVA is None, reason="no Java runtime: openapi-generator's jar needs one (Java 17 is in the CI image)"
)


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def served(
    emulator: ThreadedServer, make_gateway: Callable[..., GatewayUnderTest], tmp_path: Path
) -> tuple[GatewayUnderTest, Path]:
    """A gateway with auth on, its key, and the schema it serves saved as a file."""
    gw = make_gateway([emulator.url], auth_disabled=False)
    gw.key = create_key(tmp_path, "generated-client")
    schema = gw.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    path = tmp_path / "openapi.json"
    path.write_bytes(schema.content)
    return gw, path


@pytest.fixture
def python_client(served: tuple[GatewayUnderTest, Path], tmp_path: Path) -> Iterator[ModuleType]:
    _, schema = served
    out = tmp_path / "generated" / "vlgw_generated_client"
    done = run(
        BIN / "openapi-python-client", "generate", "--path", schema, "--output-path", out, "--meta", "none"
    )
    # Its warnings name the parts it could not type and left out of the client.
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module("vlgw_generated_client")
    finally:
        sys.path.remove(str(out.parent))
        for name in [m for m in sys.modules if m.startswith("vlgw_generated_client")]:
            del sys.modules[name]


def test_python_client_asks_lists_models_and_reads_typed_errors(
    served: tuple[GatewayUnderTest, Path], python_client: ModuleType
) -> None:
    gw, _ = served
    client_mod = importlib.import_module("vlgw_generated_client.client")
    qwen_vl = importlib.import_module("vlgw_generated_client.api.default.qwen_vl")
    list_models = importlib.import_module("vlgw_generated_client.api.default.list_models")
    models = importlib.import_module("vlgw_generated_client.models")
    image = data_uri(photo_jpeg(640, 480))
    with client_mod.AuthenticatedClient(
        base_url=gw.url, token=gw.key, raise_on_unexpected_status=True
    ) as client:
        answer = qwen_vl.sync(client=client, body=models.QwenVlBody(image=image, prompt="What is this?"))
        assert isinstance(answer, models.AppAnswer), answer
        assert answer.code == 0 and answer.text and answer.usage.total_tokens > 0 and answer.request_id

        refused = qwen_vl.sync_detailed(
            client=client, body=models.QwenVlBody(image=image, prompt="?", max_tokens=10**9)
        )
        assert refused.status_code == 400
        assert isinstance(refused.parsed, models.AppError), refused.parsed
        assert refused.parsed.code == 40007 and refused.parsed.param == "max_tokens"

        listed = list_models.sync(client=client)
        assert isinstance(listed, models.ModelList) and listed.data and listed.data[0].id

    with client_mod.AuthenticatedClient(base_url=gw.url, token="vlgw_not-a-key") as stranger:
        denied = list_models.sync_detailed(client=stranger)
        assert denied.status_code == 401 and isinstance(denied.parsed, models.OpenAIError)
        assert denied.parsed.error.code == 40101


TS_CLIENT = """\
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

const [baseUrl, key, image] = process.argv.slice(2);
// "application/json": the answers' types without the text/event-stream alternative (stream unset).
const headers = { Authorization: `Bearer ${key}` };
const client = createClient<paths, "application/json">({ baseUrl, headers });

const asked = await client.POST("/v1/qwen-vl", { body: { image, prompt: "What is this?", max_tokens: 32 } });
const answer: components["schemas"]["AppAnswer"] | undefined = asked.data;
const refused = await client.POST("/v1/qwen-vl", { body: { image, prompt: "?", max_tokens: 1e9 } });
const error: components["schemas"]["AppError"] | undefined = refused.error;
const listed = await client.GET("/v1/models");
const chat = await client.POST("/v1/chat/completions", {
  body: {
    model: listed.data?.data[0]?.id ?? "",
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: image } },
                                         { type: "text", text: "What is this?" }] }],
    max_tokens: 16,
  },
});
console.log(JSON.stringify({
  answer: { status: asked.response.status, code: answer?.code, text: answer?.text },
  refused: { status: refused.response.status, code: error?.code, param: error?.param },
  models: listed.data?.data.map((m) => m.id),
  chat: chat.data?.choices[0]?.message.content,
}));
"""

TS_WRONG = """\
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const client = createClient<paths, "application/json">({ baseUrl: "http://127.0.0.1:1" });
await client.POST("/v1/chat/completions", { body: { model: "m" } });
await client.POST("/v1/qwen-vl", { body: { image: "x", max_tokens: "many" } });
"""


def tsc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--strict", "--module", "nodenext", "--target", "es2022", "--skipLibCheck", "--types", "node"]
    return subprocess.run(
        [str(NODE), str(TS_MODULES / "typescript" / "bin" / "tsc"), *flags, *args],
        cwd=cwd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@needs_ts
def test_typescript_client_type_checks_and_calls_the_gateway(
    served: tuple[GatewayUnderTest, Path], tmp_path: Path
) -> None:
    gw, schema = served
    work = tmp_path / "ts"
    work.mkdir()
    (work / "node_modules").symlink_to(TS_MODULES)
    assert NODE is not None
    run(
        NODE,
        TS_MODULES / "openapi-typescript" / "bin" / "cli.js",
        schema,
        "-o",
        work / "schema.d.ts",
        cwd=work,
    )
    (work / "client.mts").write_text(TS_CLIENT)
    (work / "wrong.mts").write_text(TS_WRONG)
    checked = tsc(work, "--noEmit", "client.mts")
    assert checked.returncode == 0, checked.stdout[-3000:]
    # The types are real, not ``any``: a body without its required messages and a string max_tokens
    # are refused (openapi-fetch's generic init escapes TypeScript's excess-property check).
    wrong = tsc(work, "--noEmit", "wrong.mts")
    assert wrong.returncode != 0, wrong.stdout
    assert "wrong.mts(5," in wrong.stdout and "'messages' is missing" in wrong.stdout, wrong.stdout[-3000:]
    assert "wrong.mts(6," in wrong.stdout and "not assignable to type 'number'" in wrong.stdout, wrong.stdout
    emitted = tsc(work, "--outDir", "out", "client.mts")
    assert emitted.returncode == 0, emitted.stdout[-3000:]
    (work / "out" / "node_modules").symlink_to(TS_MODULES)
    done = run(
        NODE, work / "out" / "client.mjs", gw.url, str(gw.key), data_uri(photo_jpeg(320, 240)), cwd=work
    )
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["answer"]["status"] == 200 and result["answer"]["code"] == 0 and result["answer"]["text"]
    assert result["refused"] == {"status": 400, "code": 40007, "param": "max_tokens"}
    assert result["models"] and result["chat"]


@needs_java
@pytest.mark.parametrize("generator", ["kotlin", "swift6"])
def test_openapi_generator_validates_and_generates(
    served: tuple[GatewayUnderTest, Path], tmp_path: Path, generator: str
) -> None:
    _, schema = served
    cli = BIN / "openapi-generator-cli"
    validated = run(cli, "validate", "-i", schema)
    assert "No validation issues detected" in validated.stdout, validated.stdout
    out = tmp_path / generator
    done = run(cli, "generate", "-i", schema, "-g", generator, "-o", out)
    log = done.stdout + done.stderr
    assert "ERROR" not in log, log[-3000:]
    sources = {p.stem for p in out.rglob("*") if p.suffix in (".kt", ".swift")}
    models = ("AppAnswer", "AppError", "OpenAIError", "ChatCompletion", "ChatCompletionsRequest",
              "ChatRequestMessage", "ImagePart", "ModelList", "QwenVlRequest", "UsageReport")  # fmt: skip
    for model in models:
        assert model in sources, (generator, model)
    api = "\n".join(p.read_text() for p in out.rglob("DefaultAPI.swift")) + "\n".join(
        p.read_text() for p in out.rglob("DefaultApi.kt")
    )
    for operation in ("qwenVl", "chatCompletions", "listModels", "feedback", "usage", "listPresets"):
        assert operation in api, (generator, operation)


@needs_kotlin
def test_kotlin_models_compile_and_talk_to_the_gateway(
    served: tuple[GatewayUnderTest, Path], tmp_path: Path
) -> None:
    """The Kotlin client's models and serializer (retrofit2 + gson, oneOf/anyOf wrappers) compile with
    kotlinc and carry a real call (``Main.kt``: the JDK's HTTP client in place of retrofit, which no
    registry reachable here ships)."""
    gw, schema = served
    out = tmp_path / "kotlin"
    options = "serializationLibrary=gson,generateOneOfAnyOfWrappers=true"
    cli = BIN / "openapi-generator-cli"
    run(
        cli,
        "generate",
        "-i",
        schema,
        "-g",
        "kotlin",
        "-o",
        out,
        "--library",
        "jvm-retrofit2",
        "--additional-properties",
        options,
    )
    src = out / "src" / "main" / "kotlin" / "org" / "openapitools" / "client"
    sources = [*(src / "models").glob("*.kt"), src / "infrastructure" / "Serializer.kt"]
    sources += (src / "infrastructure").glob("*Adapter.kt")
    classes = tmp_path / "classes"
    run(KOTLINC, "-cp", GSON, "-d", classes, *sources, KOTLIN_MAIN, timeout=400)
    stdlib = KOTLINC.parent.parent / "lib" / "kotlin-stdlib.jar"
    image = data_uri(photo_jpeg(320, 240))
    assert JAVA is not None
    done = run(
        JAVA, "-cp", os.pathsep.join(map(str, (classes, GSON, stdlib))), "MainKt", gw.url, str(gw.key), image
    )
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["answer"]["status"] == 200 and result["answer"]["code"] == 0 and result["answer"]["text"]
    assert result["refused"] == {"status": 400, "code": 40007, "param": "max_tokens"}
    assert result["models"]
