"""Fixtures for the tts container tests: one loaded espeak engine per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# The container package is installed with the project (pyproject packages.find); fall back to the source
# tree when the editable install predates it.
for _package, _folder in (("storyflow_tts", "tts"), ("storyflow_serving", "serving")):
    if importlib.util.find_spec(_package) is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "containers" / _folder))

from storyflow_tts.engines.espeak import EspeakEngine  # noqa: E402


@pytest.fixture(scope="session")
def espeak() -> EspeakEngine:
    engine = EspeakEngine()
    engine.load()
    return engine
