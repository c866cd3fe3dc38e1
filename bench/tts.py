"""Benchmark of the tts container: engine speed (real-time factor) and timing accuracy.

    .venv/bin/python bench/tts.py [--words 1000] [--minutes 5] [--repeat 3]

- espeak RTF: audio seconds per wall second for a generated --words text (synthesis alone, and with the
  five outputs written: WAV, AAC m4a, SRT, VTT, words.json). Best of --repeat runs; CPU time and load
  average are recorded too (wall time depends on what else the machine runs).
- timing drift: a ~--minutes narration; the final sentence is also spoken on its own and found in the tail
  of the long audio by cross-correlation (where it really starts), then compared with where words.json says
  its first word starts; and the last word's end against the audio's last sound. Target: under 100 ms.
- kokoro RTF: Kokoro-82M's full-size architecture with random weights (identical compute to the real model;
  no weights needed) on a CUDA GPU, target >= 100x on an H100-class GPU; "needs GPU" without one (and
  "needs the kokoro extra" without torch/kokoro: `make kokoro`).

Prints a table and writes bench/results/tts.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for package, folder in (("storyflow_tts", "tts"), ("storyflow_serving", "serving")):
    if importlib.util.find_spec(package) is None:
        sys.path.insert(0, str(ROOT / "containers" / folder))

import numpy as np  # noqa: E402
from storyflow_tts.engines.base import Engine, Speech  # noqa: E402
from storyflow_tts.engines.espeak import EspeakEngine  # noqa: E402
from storyflow_tts.outputs import write_outputs  # noqa: E402
from storyflow_tts.params import TtsParams  # noqa: E402

DRIFT_TARGET_MS = 100.0
KOKORO_TARGET_RTF = 100.0
SENTENCES = (
    "The lighthouse keeper climbed the stairs at dusk, as he had done every evening for thirty years.",
    "He lit the great lamp, and its beam swept across the restless water toward the distant harbour.",
    "Out on the bay, the small fishing boats turned for home before the weather broke.",
    "Nobody thanked him for it; nobody ever did, and he had long ago stopped expecting them to.",
    "In the morning he wrote the date, the wind and the number of ships in a worn leather book.",
    "Some nights the fog was so thick that he could not see the rocks below the tower at all.",
    "Then he sounded the horn every minute until dawn, counting the seconds between the blasts.",
    "His daughter visited twice a year, bringing oranges, newspapers and news of the mainland.",
)


def sentences_of(words: int) -> list[str]:
    """Sentences (cycling SENTENCES) until at least `words` words."""
    out: list[str] = []
    count = 0
    while count < words:
        out.append(SENTENCES[len(out) % len(SENTENCES)])
        count += len(out[-1].split())
    return out


def text_of(words: int) -> str:
    return " ".join(sentences_of(words))


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def rtf(engine: Engine, text: str, params: TtsParams, repeat: int) -> dict[str, Any]:
    """Best-of-repeat real-time factor, synthesis alone and with the outputs written."""
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), _cpu()
        speech = engine.synthesize(text, params)
        synth = time.perf_counter() - wall0
        with tempfile.TemporaryDirectory() as tmp:
            write_outputs(speech, params, engine.name, Path(tmp))
        total, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        if best is None or total < best["total_s"]:
            best = {
                "words": len(text.split()),
                "audio_s": round(speech.seconds, 2),
                "synth_s": round(synth, 3),
                "total_s": round(total, 3),
                "cpu_s": round(cpu, 3),
                "rtf_synth": round(speech.seconds / synth, 1),
                "rtf_with_outputs": round(speech.seconds / total, 1),
            }
    assert best is not None
    return best


def locate(needle: np.ndarray, haystack: np.ndarray) -> int:
    """Where `needle` best matches inside `haystack` (FFT cross-correlation): its start sample."""
    n = len(needle) + len(haystack)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    return int(np.argmax(corr[: len(haystack) - len(needle) + 1]))


def drift(engine: Engine, minutes: float, params: TtsParams) -> dict[str, Any]:
    sentences = sentences_of(int(minutes * 205))  # espeak speaks ~200 words a minute at speed 1
    text, last_sentence = " ".join(sentences), sentences[-1]
    speech: Speech = engine.synthesize(text, params)
    alone: Speech = engine.synthesize(last_sentence, params)
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(speech, params, engine.name, Path(tmp))
        words = json.loads((Path(tmp) / "words.json").read_text())["words"]
    rate = speech.sample_rate
    first_of_last = len(words) - len(last_sentence.split())
    reported_ms = words[first_of_last]["start_ms"]
    # Where the final sentence's sound really starts: its own rendering located in the last 30 s.
    tail_from = max(0, len(speech.audio) - 30 * rate)
    onset_alone = alone.words[0].start * rate  # silence espeak puts before a sentence's first word
    found = tail_from + locate(alone.audio, speech.audio[tail_from:])
    actual_ms = 1000 * (found + onset_alone) / rate
    loud = np.flatnonzero(np.abs(speech.audio) > 0.01)
    last_sound_ms = 1000 * (int(loud[-1]) + 1) / rate if loud.size else 0.0
    start_drift = abs(reported_ms - actual_ms)
    end_drift = abs(words[-1]["end_ms"] - last_sound_ms)
    return {
        "audio_s": round(speech.seconds, 1),
        "words": len(words),
        "last_sentence_start_reported_ms": reported_ms,
        "last_sentence_start_actual_ms": round(actual_ms, 1),
        "start_drift_ms": round(start_drift, 1),
        "last_word_end_ms": words[-1]["end_ms"],
        "last_sound_ms": round(last_sound_ms, 1),
        "end_drift_ms": round(end_drift, 1),
        "max_drift_ms": round(max(start_drift, end_drift), 1),
        "target_ms": DRIFT_TARGET_MS,
        "ok": max(start_drift, end_drift) < DRIFT_TARGET_MS,
    }


def kokoro_row(words: int, repeat: int) -> dict[str, Any]:
    """Kokoro-82M's full architecture with random weights on a GPU, or why it was not measured."""
    try:
        import torch
    except ImportError:
        return {"status": "needs the kokoro extra (make kokoro) and a GPU"}
    if not torch.cuda.is_available():
        return {"status": "needs GPU"}
    if importlib.util.find_spec("kokoro") is None:
        return {"status": "needs the kokoro extra (make kokoro)"}
    from storyflow_tts.engines.kokoro import KokoroEngine

    from tests.unit.tts.tiny_kokoro import build_model_dir

    text = text_of(words)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model_dir(Path(tmp), [text], full_size=True)
        engine = KokoroEngine(folder, device="cuda")
        engine.load()
        engine.synthesize(SENTENCES[0], TtsParams())  # warm-up (CUDA kernels)
        row = rtf(engine, text, TtsParams(), repeat)
    row.update(
        status="measured (random weights, full Kokoro-82M architecture)",
        gpu=torch.cuda.get_device_name(0),
        target_rtf=KOKORO_TARGET_RTF,
        ok=row["rtf_synth"] >= KOKORO_TARGET_RTF,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    espeak = EspeakEngine()
    espeak.load()
    params = TtsParams()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "espeak_rtf": rtf(espeak, text_of(args.words), params, args.repeat),
        "timing_drift": drift(espeak, args.minutes, params),
        "kokoro_rtf": kokoro_row(args.words, args.repeat),
    }
    e, d, k = results["espeak_rtf"], results["timing_drift"], results["kokoro_rtf"]
    rows = [
        ("espeak RTF, synthesis", f"{e['words']} words, {e['audio_s']} s audio", f"{e['rtf_synth']}x"),
        (
            "espeak RTF, with the 5 outputs",
            f"{e['total_s']} s wall, {e['cpu_s']} s CPU",
            f"{e['rtf_with_outputs']}x",
        ),
        (
            "drift at the last sentence",
            f"{d['audio_s']} s narration, {d['words']} words",
            f"{d['start_drift_ms']} ms (target < {DRIFT_TARGET_MS:g})",
        ),
        ("drift at the last word's end", "words.json vs the last sound", f"{d['end_drift_ms']} ms"),
        ("kokoro RTF", k.get("gpu", ""), f"{k['rtf_synth']}x" if "rtf_synth" in k else k["status"]),
    ]
    width = max(len(r[0]) for r in rows)
    middle = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'what':<{middle}}  result")
    for name, what, value in rows:
        print(f"{name:<{width}}  {what:<{middle}}  {value}")
    out = ROOT / "bench" / "results" / "tts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if d["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
