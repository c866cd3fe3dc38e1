"""Engine registry: ``ENGINE=depthwarp|stereocrafter`` (default depthwarp)."""

from __future__ import annotations

import os

from storyflow_stereo.engines.base import Engine, RenderResult
from storyflow_stereo.errors import UnknownEngine

DEFAULT_ENGINE = "depthwarp"
ENGINE_NAMES = ("depthwarp", "stereocrafter")

__all__ = ["DEFAULT_ENGINE", "ENGINE_NAMES", "Engine", "RenderResult", "create_engine", "engine_name"]


def engine_name(name: str | None = None) -> str:
    """The engine to use: ``name`` if given, else env ``ENGINE``, else the default; validated."""
    chosen = (name or os.environ.get("ENGINE") or DEFAULT_ENGINE).strip().lower()
    if chosen not in ENGINE_NAMES:
        raise UnknownEngine(
            f"unknown engine {chosen!r} (from ENGINE or --engine); known: {list(ENGINE_NAMES)}"
        )
    return chosen


def create_engine(name: str | None = None) -> Engine:
    """A new, not yet loaded engine. Heavy imports (torch, diffusers) happen only in its ``load()``."""
    chosen = engine_name(name)
    if chosen == "stereocrafter":
        from storyflow_stereo.engines.stereocrafter import StereoCrafterEngine

        return StereoCrafterEngine()
    from storyflow_stereo.engines.depthwarp import DepthWarpEngine

    return DepthWarpEngine()
