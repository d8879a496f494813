"""The release workflow (.github/workflows/release.yml), checked without running GitHub Actions:
GitHub's workflow schema (SchemaStore's, vendored by check-jsonschema), then what it promises."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.helpers import ROOT, assert_ok, load_yaml, require_tool, run

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(WORKFLOW)
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    data["on"] = data.pop(True)
    return data


def steps(job: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return result


def test_workflow_matches_githubs_schema() -> None:
    checker = require_tool("check-jsonschema", "`uv sync` installs it (dev dependency)")
    assert_ok(run([checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)]))


def test_publishes_only_version_tags_after_the_tests() -> None:
    flow = workflow()
    assert flow["on"]["push"] == {"tags": ["v*.*.*"]}, "no publish from branches or pull requests"
    assert set(flow["on"]) == {"push", "workflow_dispatch"}
    assert flow["permissions"] == {}, "no token permissions unless a job asks"
    image = flow["jobs"]["image"]
    assert image["needs"] == "test"
    assert image["permissions"]["packages"] == "write"
    assert flow["jobs"]["test"]["permissions"] == {"contents": "read"}
    (suite,) = [s for s in steps("test") if s.get("name") == "Test suite"]
    assert suite["run"] == ".ci/run" and (ROOT / ".ci" / "run").exists()


def test_the_image_is_smoke_tested_before_it_is_pushed() -> None:
    names = [s.get("name") or s["uses"] for s in steps("image")]
    smoke = names.index("Smoke test (gateway in front of the bundled emulator)")
    push = names.index("Build and push")
    login = next(
        i for i, s in enumerate(steps("image")) if s.get("uses", "").startswith("docker/login-action")
    )
    assert smoke < login < push
    build, pushed = steps("image")[names.index("Build for the smoke test")], steps("image")[push]
    for step in (build, pushed):
        assert step["with"]["file"] == "Dockerfile" and (ROOT / step["with"]["file"]).exists()
        assert step["with"]["build-args"] == "VERSION=${{ steps.version.outputs.version }}"
    assert build["with"].get("push") is None and build["with"]["load"] is True
    assert pushed["with"]["push"] is True
    assert pushed["with"]["sbom"] is True and pushed["with"]["provenance"] == "mode=max"
    # The Dockerfile takes that build argument, and the smoke test checks the user it sets.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG VERSION" in dockerfile and "USER 10001:10001" in dockerfile
    smoke_script = steps("image")[smoke]["run"]
    assert "--read-only" in smoke_script and "/readyz" in smoke_script and "emulator" in smoke_script


def test_tags_never_include_latest_and_name_the_repository() -> None:
    flow = workflow()
    assert flow["env"]["IMAGE"] == "ghcr.io/${{ github.repository }}"
    (meta,) = [s for s in steps("image") if s.get("uses", "").startswith("docker/metadata-action")]
    tags = meta["with"]["tags"]
    assert "latest" not in tags and "type=semver,pattern={{version}}" in tags


def test_actions_are_pinned_and_uv_matches_the_dockerfile() -> None:
    for job in workflow()["jobs"]:
        for step in steps(job):
            if "uses" in step:
                name, _, ref = step["uses"].partition("@")
                assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", ref), f"{name} is not pinned: {ref!r}"
    (setup_uv,) = [s for s in steps("test") if s.get("uses", "").startswith("astral-sh/setup-uv")]
    pinned = re.search(r"ghcr.io/astral-sh/uv:(\S+)", (ROOT / "Dockerfile").read_text())
    assert pinned and setup_uv["with"]["version"] == pinned.group(1)


def test_no_secret_is_echoed() -> None:
    """Expressions reach shell scripts only through env:, never pasted into `run:` (injection)."""
    for job in workflow()["jobs"]:
        for step in steps(job):
            script = step.get("run", "")
            assert "${{" not in script, f"{step.get('name')}: use env: for expressions in run"
