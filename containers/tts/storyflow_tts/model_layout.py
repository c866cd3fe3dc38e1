"""The folder the ``kokoro`` engine loads from: one definition, stdlib only.

The engine (:mod:`storyflow_tts.engines.kokoro`) checks it before loading, and ``storyflow models
check|pack tts`` (the CLI) checks the same rules, so the two can never disagree::

    <root>/config.json          the model's config (with its phoneme vocab)
    <root>/kokoro-v1_0.pth      the weights (or the only *.pth there; env KOKORO_WEIGHTS names another)
    <root>/voices/{voice}.pt    one [510, 1, 256] style tensor per voice (at least one)
"""

from __future__ import annotations

from pathlib import Path

ENGINE = "kokoro"
CONFIG_FILE = "config.json"
WEIGHTS = "kokoro-v1_0.pth"
VOICES_DIR = "voices"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS)


def weights_file(root: Path, named: str | None = None) -> Path | None:
    """The weights file the engine would load: ``named``, else ``kokoro-v1_0.pth``, else the only *.pth."""
    if named:
        return root / named
    if (root / WEIGHTS).is_file():
        return root / WEIGHTS
    found = sorted(root.glob("*.pth"))
    return found[0] if len(found) == 1 else None


def missing_files(root: Path, named_weights: str | None = None) -> list[str]:
    """What the engine needs under ``root`` and does not find, relative to it; empty when complete."""
    missing = [] if (root / CONFIG_FILE).is_file() else [CONFIG_FILE]
    weights = weights_file(root, named_weights)
    if weights is None or not weights.is_file():
        missing.append(named_weights or f"{WEIGHTS} (or exactly one *.pth)")
    voices = root / VOICES_DIR
    if not (voices.is_dir() and any(voices.glob("*.pt"))):
        missing.append(f"{VOICES_DIR}/*.pt")
    return missing
