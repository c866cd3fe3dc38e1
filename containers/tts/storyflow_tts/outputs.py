"""What one narration leaves under its output prefix (``tts/{job_id}/``): the audio twice, the subtitles
twice and the word timings.

``words.json``: ``{"engine", "voice", "lang", "speed", "sample_rate", "duration_ms", "words": [{"text",
"start_ms", "end_ms"}]}``; every word has ``start_ms <= end_ms <= next start_ms <= duration_ms``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyflow_tts.audio import write_m4a, write_wav
from storyflow_tts.cues import CueRules, build_cues, to_srt, to_vtt
from storyflow_tts.engines.base import Speech, Word
from storyflow_tts.errors import NothingToSay
from storyflow_tts.params import TtsParams

# name -> media type; narration.wav is the output_uri of the request, the rest are written beside it.
FILES: dict[str, str] = {
    "narration.wav": "audio/wav",
    "narration.m4a": "audio/mp4",
    "narration.srt": "application/x-subrip",
    "narration.vtt": "text/vtt",
    "words.json": "application/json",
}
AUDIO = {"wav": "narration.wav", "m4a": "narration.m4a"}


@dataclass(frozen=True)
class TimedWord:
    text: str
    start_ms: int
    end_ms: int


def clean_words(words: list[Word], duration_ms: int) -> list[TimedWord]:
    """Timings in whole ms, made monotonic and kept inside the audio: each start is at least the previous
    one, each end between its start and the next start (and the duration)."""
    starts: list[int] = []
    for word in words:
        start = min(max(round(word.start * 1000), starts[-1] if starts else 0), duration_ms)
        starts.append(start)
    timed = []
    for i, word in enumerate(words):
        limit = starts[i + 1] if i + 1 < len(words) else duration_ms
        end = min(max(round(word.end * 1000), starts[i]), limit)
        timed.append(TimedWord(word.text, starts[i], end))
    return timed


def write_outputs(
    speech: Speech, params: TtsParams, engine: str, folder: Path, rules: CueRules | None = None
) -> dict[str, Any]:
    """Write the five files into ``folder``; returns the manifest's summary (counts and duration)."""
    if len(speech.audio) == 0:
        raise NothingToSay("the engine produced no audio")
    duration_ms = int(len(speech.audio) * 1000 // speech.sample_rate)
    words = clean_words(speech.words, duration_ms)
    if not words:
        raise NothingToSay("the engine reported no word timings for the text")
    write_wav(folder / "narration.wav", speech.audio, speech.sample_rate)
    write_m4a(folder / "narration.m4a", speech.audio, speech.sample_rate)
    seconds = [Word(w.text, w.start_ms / 1000, w.end_ms / 1000) for w in words]
    cues = build_cues(seconds, rules, duration_ms / 1000)
    (folder / "narration.srt").write_text(to_srt(cues), encoding="utf-8")
    (folder / "narration.vtt").write_text(to_vtt(cues), encoding="utf-8")
    document = {
        "engine": engine,
        "voice": params.voice,
        "lang": params.lang,
        "speed": params.speed,
        "sample_rate": speech.sample_rate,
        "duration_ms": duration_ms,
        "words": [{"text": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in words],
    }
    (folder / "words.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return {
        "seconds": round(duration_ms / 1000, 3),
        "sample_rate": speech.sample_rate,
        "words": len(words),
        "cues": len(cues),
        "chunks": speech.chunks,
    }
