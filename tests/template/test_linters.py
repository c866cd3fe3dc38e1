"""template.yaml passes `sam validate --lint` and `cfn-lint` with nothing to report (offline, fake keys)."""

from __future__ import annotations

import pytest

from tests.template.conftest import ToolRuns


def test_sam_validate_lint_passes(tool_runs: ToolRuns) -> None:
    # Given template.yaml, When `sam validate --lint` runs offline, Then it reports a valid template.
    result = tool_runs.result("sam-validate")
    if result.returncode != 0:
        pytest.fail(f"sam validate --lint failed:\n{result.describe()}", pytrace=False)


def test_cfn_lint_is_clean(tool_runs: ToolRuns) -> None:
    # Given template.yaml (and .cfnlintrc when present), When cfn-lint runs, Then no error or warning.
    result = tool_runs.result("cfn-lint")
    if result.returncode != 0:
        pytest.fail(f"cfn-lint reported problems:\n{result.describe()}", pytrace=False)
