"""Fixtures for the stereo container tests: small generated clips."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# The container package is installed with the project (pyproject packages.find); fall back to the source
# tree when the editable install predates it.
for _package, _folder in (("storyflow_stereo", "stereo"), ("storyflow_serving", "serving")):
    if importlib.util.find_spec(_package) is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "containers" / _folder))

from storyflow_stereo.video import write_test_clip  # noqa: E402


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stereo-clips")


@pytest.fixture(scope="session")
def small_clip(clip_dir: Path) -> Path:
    """160x90, 12 frames at 24 fps, H.264 yuv420p."""
    return write_test_clip(clip_dir / "small.mp4", 160, 90, 12, fps=24)


@pytest.fixture(scope="session")
def odd_clip(clip_dir: Path) -> Path:
    """161x91 (odd width and height: H.264 4:4:4), 7 frames at 25 fps."""
    return write_test_clip(clip_dir / "odd.mp4", 161, 91, 7, fps=25, pix_fmt="yuv444p")
