"""Template tests: the external linters (sam, cfn-lint, checkov, asl-validator) and how to find them.

The tools live outside the project venv (`make tools` builds them):
  .venv-tools/bin/{sam,cfn-lint}   .venv-checkov/bin/checkov   node_modules/.bin/asl-validator
A missing tool fails its test with the command that installs it. Only outside CI, and only when
STORYFLOW_ALLOW_MISSING_TOOLS=1 is set, is a missing tool a skip instead.

The slow tools (a few seconds each on 2 cores) are started together, once per session, the first
time a test asks for any of them; each test then waits only for its own result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.template import ROOT, TEMPLATE

TOOL_TIMEOUT_S = 240

# name -> where `make tools` puts it, relative to the repository root.
TOOL_PATHS = {
    "sam": ".venv-tools/bin/sam",
    "cfn-lint": ".venv-tools/bin/cfn-lint",
    "checkov": ".venv-checkov/bin/checkov",
    "asl-validator": "node_modules/.bin/asl-validator",
}

CHECKOV_CONFIG = ROOT / ".checkov.yaml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.template)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_tool(name: str) -> str | None:
    local = ROOT / TOOL_PATHS[name]
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test (skips only locally, when explicitly allowed)."""
    path = find_tool(name)
    if path:
        return path
    message = (
        f"{name} is not installed (looked for {TOOL_PATHS[name]} and on PATH). "
        "Run `make tools` (or `make template-check`, which sets everything up)."
    )
    if not _in_ci() and os.environ.get("STORYFLOW_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def tool_env() -> dict[str, str]:
    """Offline, credential-free environment: fake keys, a fixed region, no telemetry, no downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
        BC_SKIP_MAPPING="TRUE",
        NO_COLOR="1",
    )
    return env


@dataclass
class ToolResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.command)}\n(exit {self.returncode})\n"
            f"--- stdout ---\n{self.stdout[-8000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


class ToolRuns:
    """Starts every available slow tool at once; `result(name)` waits for one of them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.commands: dict[str, tuple[str, list[str]]] = {}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.results: dict[str, ToolResult] = {}
        template = str(TEMPLATE)
        self.commands["sam-validate"] = (
            "sam",
            ["validate", "--lint", "--template", template, "--region", "us-east-1"],
        )
        self.commands["cfn-lint"] = ("cfn-lint", [template])
        self.commands["checkov"] = (
            "checkov",
            ["--config-file", str(self._checkov_config_without_skips()), "-f", template, "-o", "json"],
        )
        for key, (tool, args) in self.commands.items():
            path = find_tool(tool)
            if path is None:
                continue
            self.procs[key] = subprocess.Popen(
                [path, *args],
                # checkov also reads ./.checkov.yaml by itself: run it outside the repository so only
                # the skip-less copy applies. The other tools read their config (.cfnlintrc) from ROOT.
                cwd=workdir if tool == "checkov" else ROOT,
                env=tool_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

    def _checkov_config_without_skips(self) -> Path:
        """The project's checkov config minus `skip-check`: the test applies the skips itself, so it
        can also tell a skip that no longer matches anything (a stale skip)."""
        config = yaml.safe_load(CHECKOV_CONFIG.read_text()) if CHECKOV_CONFIG.exists() else {}
        config.pop("skip-check", None)
        path = self.workdir / "checkov.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def result(self, key: str) -> ToolResult:
        tool, args = self.commands[key]
        require_tool(tool)
        if key not in self.results:
            proc = self.procs[key]
            try:
                out, err = proc.communicate(timeout=TOOL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"{tool} ran past {TOOL_TIMEOUT_S} s:\n{err[-4000:]}", pytrace=False)
            self.results[key] = ToolResult([tool, *args], proc.returncode, out, err)
        return self.results[key]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture(scope="session")
def tool_runs() -> Iterator[ToolRuns]:
    with tempfile.TemporaryDirectory(prefix="storyflow-template-") as tmp:
        runs = ToolRuns(Path(tmp))
        try:
            yield runs
        finally:
            runs.close()
