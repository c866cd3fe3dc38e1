"""checkov finds nothing in template.yaml but the checks skipped in .checkov.yaml, each with a written reason.

checkov runs once with the config minus its skip list; the skips are applied here, so a skip that no longer
matches any finding is reported too (as a warning: the template is still growing).
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
import yaml

from tests.template.conftest import CHECKOV_CONFIG, ToolRuns

SKIP_LINE = re.compile(r"^\s*-\s*(?P<id>\S+)\s*(?:#\s*(?P<reason>.*))?$")
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
MIN_REASON_CHARS = 40


def _skips_with_reasons() -> dict[str, str]:
    """`skip-check` entries of .checkov.yaml -> the comment on the same line."""
    skips: dict[str, str] = {}
    in_list = False
    for line in CHECKOV_CONFIG.read_text().splitlines():
        if re.match(r"^skip-check\s*:", line):
            in_list = True
            continue
        if in_list and line and not line[0].isspace() and not line.lstrip().startswith("#"):
            in_list = False
        match = SKIP_LINE.match(line) if in_list else None
        if match:
            skips[match["id"]] = (match["reason"] or "").strip()
    return skips


def _reports(stdout: str) -> list[dict[str, Any]]:
    data = json.loads(stdout) if stdout.strip() else []
    reports = data if isinstance(data, list) else [data]
    return [r for r in reports if isinstance(r, dict) and "results" in r]


def test_config_lists_each_skip_with_a_reason() -> None:
    # Given .checkov.yaml, Then every skipped check is a check id followed by a comment that explains it.
    assert CHECKOV_CONFIG.is_file(), ".checkov.yaml is missing"
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    listed = [str(c) for c in config.get("skip-check") or []]
    skips = _skips_with_reasons()
    assert sorted(listed) == sorted(skips), (
        "write each skip-check entry on its own line as `- CKV_..  # reason`"
    )
    bad_ids = [c for c in listed if not CHECK_ID.match(c)]
    assert not bad_ids, f"skip-check takes exact check ids: {bad_ids}"
    unexplained = [c for c, reason in skips.items() if len(reason) < MIN_REASON_CHARS]
    assert not unexplained, f"skips without a written reason (>= {MIN_REASON_CHARS} chars): {unexplained}"
    assert "cloudformation" in (config.get("framework") or []), (
        "checkov must scan the cloudformation framework"
    )


def test_checkov_finds_nothing_unexplained(tool_runs: ToolRuns) -> None:
    # Given template.yaml, When checkov scans it, Then every failed check is one skipped with a reason.
    result = tool_runs.result("checkov")
    try:
        reports = _reports(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not print JSON:\n{result.describe()}", pytrace=False)
    assert result.returncode in (0, 1), f"checkov crashed:\n{result.describe()}"
    cfn = [r for r in reports if r.get("check_type") == "cloudformation"]
    assert cfn, f"checkov produced no cloudformation report:\n{result.describe()}"
    summary = cfn[0].get("summary", {})
    if summary.get("parsing_errors") or not summary.get("resource_count"):
        pytest.fail(f"checkov could not read template.yaml ({summary}):\n{result.describe()}", pytrace=False)
    skips = _skips_with_reasons()
    failed = [f for r in reports for f in r["results"].get("failed_checks", [])]
    unexplained = [f for f in failed if f["check_id"] not in skips]
    if unexplained:
        lines = [
            f"  {f['check_id']} {f.get('check_name', '')}\n"
            f"      {f.get('resource')}  template.yaml:{(f.get('file_line_range') or ['?'])[0]}"
            + (f"  ({f['guideline']})" if f.get("guideline") else "")
            for f in unexplained
        ]
        pytest.fail(
            "checkov failures: fix the template, or add the check id to skip-check in .checkov.yaml "
            "with a reason why it does not apply:\n" + "\n".join(lines),
            pytrace=False,
        )
    stale = sorted(set(skips) - {f["check_id"] for f in failed})
    if stale:
        warnings.warn(f".checkov.yaml skips checks that no longer fail: {stale}", stacklevel=1)
