"""Engine registry: ``ENGINE=kokoro|espeak`` (default espeak: it needs no weights)."""

from __future__ import annotations

import os

from storyflow_tts.engines.base import Engine, Speech, Word
from storyflow_tts.errors import UnknownEngine

DEFAULT_ENGINE = "espeak"
ENGINE_NAMES = ("espeak", "kokoro")

__all__ = ["DEFAULT_ENGINE", "ENGINE_NAMES", "Engine", "Speech", "Word", "create_engine", "engine_name"]


def engine_name(name: str | None = None) -> str:
    """The engine to use: ``name`` if given, else env ``ENGINE``, else the default; validated."""
    chosen = (name or os.environ.get("ENGINE") or DEFAULT_ENGINE).strip().lower()
    if chosen not in ENGINE_NAMES:
        raise UnknownEngine(
            f"unknown engine {chosen!r} (from ENGINE or --engine); known: {list(ENGINE_NAMES)}"
        )
    return chosen


def create_engine(name: str | None = None) -> Engine:
    """A new, not yet loaded engine. Heavy imports (torch, kokoro) happen only in its ``load()``."""
    chosen = engine_name(name)
    if chosen == "kokoro":
        from storyflow_tts.engines.kokoro import KokoroEngine

        return KokoroEngine()
    from storyflow_tts.engines.espeak import EspeakEngine

    return EspeakEngine()
