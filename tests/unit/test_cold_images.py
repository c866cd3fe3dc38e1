"""Image pull time (issue 14): in the GPU images, the weights layer never follows a layer that changes with
the code or its dependencies, so a code change re-pulls only the small code layers. No Docker needed: the
Dockerfiles' instruction order is the layer order."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_DOCKERFILES = [ROOT / "containers" / name / "Dockerfile" for name in ("stereo", "tts", "video")]


def _instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, one string each (continuation lines joined, comments dropped)."""
    joined, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return joined


def _is_weights(instruction: str) -> bool:
    return instruction.split()[0] in {"COPY", "ADD"} and "weights" in instruction


def _changes_with_code(instruction: str) -> bool:
    """A layer that a code or dependency change rebuilds: our packages, or what pip installs."""
    word = instruction.split()[0]
    return (word in {"COPY", "ADD"} and "storyflow_" in instruction) or (
        word == "RUN" and "pip install" in instruction
    )


@pytest.mark.parametrize("dockerfile", GPU_DOCKERFILES, ids=lambda p: p.parent.name)
def test_weights_come_before_every_layer_that_changes_with_the_code(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    weights = [i for i, instruction in enumerate(instructions) if _is_weights(instruction)]
    code = [i for i, instruction in enumerate(instructions) if _changes_with_code(instruction)]
    assert code, f"{dockerfile}: no code or pip layer found (the test's reading is out of date)"
    assert all(w < min(code) for w in weights), f"{dockerfile}: a weights layer comes after code or pip"


@pytest.mark.parametrize("dockerfile", GPU_DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_image_downloads_weights_at_build_time(dockerfile: Path) -> None:
    """Weights are baked from the build context or come as the model artifact / MODEL_URI, never fetched
    by a RUN layer (which would sit among the code layers and re-download on every rebuild)."""
    runs = [i for i in _instructions(dockerfile) if i.startswith("RUN ")]
    assert not [r for r in runs if "snapshot_download" in r or "huggingface-cli" in r or "hf download" in r]
