"""Which local program stands for a container image."""

from __future__ import annotations

import sys
from pathlib import Path

from storyflow_local.programs import image_entrypoint, image_repository, resolve_argv


def test_image_repository_names() -> None:
    assert image_repository("123.dkr.ecr.us-east-1.amazonaws.com/storyflow-media:latest") == "storyflow-media"
    assert image_repository("storyflow-media") == "storyflow-media"
    assert image_repository("ghcr.io/org/storyflow/stereo:1@sha256:abc") == "org/storyflow/stereo"
    assert image_repository("localhost:5000/x:1") == "x"


def test_entrypoint_from_config_or_bin_dir(tmp_path: Path) -> None:
    program = tmp_path / "storyflow-media"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert image_entrypoint("r/storyflow-media:1", tmp_path, {}) == ["storyflow-media"]
    assert image_entrypoint("r/other:1", tmp_path, {"other": ["python", "x.py"]}) == ["python", "x.py"]
    assert image_entrypoint("r/unknown-image-xyz:1", tmp_path, {}) is None
    assert resolve_argv(["storyflow-media", "chunk"], tmp_path) == [str(program), "chunk"]
    assert resolve_argv([sys.executable], tmp_path) == [sys.executable]
