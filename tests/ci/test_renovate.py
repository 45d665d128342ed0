"""The generated renovate.json: valid for Renovate's own validator, and its regex managers find
every pinned tool of the CI scripts (so Renovate can propose their updates)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, run

PINS = yaml.safe_load((REPO_ROOT / "extensions" / "versions.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(tool: Callable[[str], str]) -> str:
    return tool("renovate-config-validator")


def validate(validator: str, config: Path) -> tuple[int, str]:
    result = run([validator, "--strict", config.name], cwd=config.parent, check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_renovate_config_passes_renovate_s_own_validator(
    make_project: Callable[..., Path], validator: str, ci_provider: str
) -> None:
    project = make_project(ci_provider=ci_provider)
    code, output = validate(validator, project / "renovate.json")
    assert code == 0, output
    assert "Config validated successfully" in output


def test_validator_refuses_a_misspelt_option(
    make_project: Callable[..., Path], validator: str, tmp_path: Path
) -> None:
    config = json.loads((make_project() / "renovate.json").read_text(encoding="utf-8"))
    config["packageRules"][0]["matchUpdateType"] = ["minor"]
    broken = tmp_path / "renovate.json"
    broken.write_text(json.dumps(config), encoding="utf-8")
    code, output = validate(validator, broken)
    assert code != 0
    assert "matchUpdateType" in output


def js_regex(pattern: str) -> re.Pattern[str]:
    """Renovate's (JavaScript) named groups in Python's syntax."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def test_regex_managers_find_every_pinned_ci_tool_with_its_module_and_version(
    make_project: Callable[..., Path],
) -> None:
    project = make_project()
    config = json.loads((project / "renovate.json").read_text(encoding="utf-8"))
    found: dict[str, set[tuple[str, str]]] = {}
    for manager in config["customManagers"]:
        files = [
            path
            for path in sorted((project / "scripts" / "ci").iterdir())
            if any(
                re.search(pattern, f"scripts/ci/{path.name}") for pattern in manager["fileMatch"]
            )
        ]
        assert "install-tools" in [path.name for path in files]
        for path in files:
            text = path.read_text(encoding="utf-8")
            for pattern in manager["matchStrings"]:
                for match in js_regex(pattern).finditer(text):
                    found.setdefault(manager["datasourceTemplate"], set()).add(
                        (match["depName"], match["currentValue"])
                    )
    go_pins = PINS["lint_tools"]["go"]
    expected_go = {
        ("helm.sh/helm/v3", "v3.19.5"),
        ("github.com/yannh/kubeconform", "v0.7.0"),
        ("github.com/zegl/kube-score", "v1.20.0"),
        ("github.com/zricethezav/gitleaks/v8", "v8.30.1"),
        ("github.com/rhysd/actionlint", "v1.7.12"),
    }
    # Module paths, not command paths: the Go datasource looks modules up.
    assert {f"{module}@{version}" for module, version in expected_go} <= {
        f"{module}@{version}" for module, version in found["go"]
    }
    assert len(expected_go) == len(go_pins)
    expected_pypi = {(name, version) for name, version in PINS["lint_tools"]["python"].items()}
    # zizmor is GitHub's; check-jsonschema GitLab's (the default project is on GitHub).
    assert (
        expected_pypi - {("check-jsonschema", PINS["lint_tools"]["python"]["check-jsonschema"])}
        <= (found["pypi"])
    )
