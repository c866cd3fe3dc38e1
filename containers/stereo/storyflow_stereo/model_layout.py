"""The folder the ``stereocrafter`` engine loads its weights from: one definition, stdlib only.

The engine (:mod:`storyflow_stereo.engines.stereocrafter`) checks it before loading, and
``storyflow models check|pack stereo`` (the CLI) checks the same lists, so the two can never disagree::

    <root>/
      stable-video-diffusion-img2vid-xt-1-1/   model_index.json, feature_extractor/, image_encoder/,
                                               scheduler/, vae/ (fp16 variant)
      DepthCrafter/                            config.json + unet weights
      StereoCrafter/unet_diffusers/            config.json + unet weights

A ``weights/`` folder inside the root is accepted too (``resolve_model_dir``). No heavy import here.
"""

from __future__ import annotations

from pathlib import Path

ENGINE = "stereocrafter"
SVD_DIR = "stable-video-diffusion-img2vid-xt-1-1"
DEPTHCRAFTER_DIR = "DepthCrafter"
STEREOCRAFTER_UNET_DIR = "StereoCrafter/unet_diffusers"
REQUIRED_FILES = (
    f"{SVD_DIR}/model_index.json",
    f"{SVD_DIR}/feature_extractor/preprocessor_config.json",
    f"{SVD_DIR}/image_encoder/config.json",
    f"{SVD_DIR}/scheduler/scheduler_config.json",
    f"{SVD_DIR}/vae/config.json",
    f"{DEPTHCRAFTER_DIR}/config.json",
    f"{STEREOCRAFTER_UNET_DIR}/config.json",
)
# Folders that must hold at least one weights file (*.safetensors or *.bin).
REQUIRED_WEIGHT_DIRS = (
    f"{SVD_DIR}/image_encoder",
    f"{SVD_DIR}/vae",
    DEPTHCRAFTER_DIR,
    STEREOCRAFTER_UNET_DIR,
)
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


def missing_model_files(root: Path) -> list[str]:
    """Paths (under ``root``) that the engine needs and that are absent; empty when complete."""
    return [str(root / rel) for rel in missing_files(root)]


def resolve_model_dir(*roots: Path) -> tuple[Path, list[str]]:
    """The first complete folder among each root and its ``weights/``; else the nearest and what it lacks."""
    best: tuple[Path, list[str]] | None = None
    seen: set[Path] = set()
    for root in roots:
        for candidate in (root, root / "weights"):
            if candidate in seen:
                continue
            seen.add(candidate)
            missing = missing_model_files(candidate)
            if not missing:
                return candidate, []
            if best is None or len(missing) < len(best[1]):
                best = (candidate, missing)
    assert best is not None, "no model folder to look in"
    return best
