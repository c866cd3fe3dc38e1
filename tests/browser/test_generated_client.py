"""The dashboard's API types are generated from docs/openapi.json (`make openapi` regenerates both)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.browser.conftest import ROOT

WEB = ROOT / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


def test_generated_api_types_match_docs_openapi_json() -> None:
    # Given the committed web/src/api/schema.d.ts and docs/openapi.json
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: install the dashboard's tools with `make web`", pytrace=False)
    node = shutil.which("node")
    assert node, "node is not installed"
    # When openapi-typescript checks the types against the document
    result = subprocess.run(
        [node, str(GENERATOR), "../docs/openapi.json", "--output", "src/api/schema.d.ts", "--check"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then they are up to date
    assert result.returncode == 0, (
        "web/src/api/schema.d.ts is stale: run `make openapi` (it regenerates docs/openapi.json and the "
        f"dashboard's types) and commit both\n{result.stdout}{result.stderr}"
    )
