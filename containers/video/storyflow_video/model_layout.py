"""The folder the ``wan`` engine loads from (Wan2.2-TI2V-5B-Diffusers): one definition, stdlib only.

The engine (:mod:`storyflow_video.engines.wan`) looks for it in $MODEL_DIR or unpacks it from $MODEL_URI,
and ``storyflow models check|pack video`` (the CLI) checks the same lists, so the two can never disagree::

    <root>/model_index.json
    <root>/scheduler/scheduler_config.json
    <root>/text_encoder/config.json + weights      (UMT5)
    <root>/tokenizer/tokenizer_config.json + tokenizer files
    <root>/transformer/config.json + weights
    <root>/vae/config.json + weights
"""

from __future__ import annotations

from pathlib import Path

ENGINE = "wan"
MODEL_INDEX = "model_index.json"
REQUIRED_FILES = (
    MODEL_INDEX,
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    "vae/config.json",
)
# Folders that must hold at least one weights file (*.safetensors or *.bin, sharded or not).
REQUIRED_WEIGHT_DIRS = ("text_encoder", "transformer", "vae")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def missing_files(root: Path) -> list[str]:
    """What the engine needs under ``root`` and does not find, relative to it; empty when complete."""
    missing = [rel for rel in REQUIRED_FILES if not (root / rel).is_file()]
    for rel in REQUIRED_WEIGHT_DIRS:
        folder = root / rel
        has_weights = folder.is_dir() and any(
            p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir() if p.is_file()
        )
        if not has_weights:
            missing.append(f"{rel}/*.safetensors")
    return missing
