"""Names and numbers that several deployment files must agree on."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    ROOT,
    UPSTREAM_RECOMMENDED_FLAGS,
    compose_model,
    flags,
    gateway_variables_in,
    setting_names,
)

# Everything an operator reads or deploys that may name a GATEWAY_* variable.
DEPLOYMENT_FILES = [
    ROOT / "docker-compose.yml",
    ROOT / ".env.example",
    ROOT / "gateway.env.example",
    ROOT / "Dockerfile",
    *sorted((ROOT / "deploy").rglob("*.yml")),
    *sorted((ROOT / "deploy").rglob("*.yaml")),
    ROOT / "docs" / "deployment.md",
    ROOT / "docs" / "kubernetes.md",
    ROOT / "docs" / "operations.md",
]
# Beside the repository in CI and on developer machines (a clone with shared/ next to it).
UPSTREAM_MD = ROOT.parent / "shared" / "UPSTREAM.md"


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_gateway_variable_is_a_real_setting(path: Path) -> None:
    unknown = gateway_variables_in(path.read_text()) - setting_names()
    assert not unknown, f"not fields of gateway/settings.py: {sorted(unknown)}"


def test_deployment_files_exist() -> None:
    for path in DEPLOYMENT_FILES:
        assert path.is_file(), path


def test_recommended_flags_are_the_ones_upstream_md_gives() -> None:
    if not UPSTREAM_MD.exists():
        pytest.skip(f"{UPSTREAM_MD} is not beside this checkout; the flags are still checked by test_compose")
    text = UPSTREAM_MD.read_text()
    match = re.search(r"`(--served-model-name[^`]*)`", text)
    assert match, "UPSTREAM.md no longer lists the recommended flags"
    _, documented = flags(["model", *shlex.split(match.group(1).replace("\n", " "))])
    documented.pop("--api-key")
    assert documented == UPSTREAM_RECOMMENDED_FLAGS
    image = compose_model("base")["services"]["vllm"]["image"]
    version = re.search(r"vLLM (\d+\.\d+)", text)
    assert version and image.startswith(f"vllm/vllm-openai:v{version.group(1)}"), (
        "the pinned vLLM differs from the one UPSTREAM.md describes: re-check its facts and update both"
    )


def test_ports_agree_everywhere() -> None:
    gateway = compose_model("base")["services"]["gateway"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "GATEWAY_PORT=8080" in dockerfile and "'GATEWAY_PORT', '8080'" in dockerfile
    assert [p["target"] for p in gateway["ports"]] == [int(gateway["environment"]["GATEWAY_PORT"])]
    assert "/healthz" in dockerfile
