"""What one narration writes: five files that agree with each other (Given speech, When written, Then)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pysubs2
import pytest
from storyflow_tts.audio import read_wav
from storyflow_tts.engines.base import Speech, Word
from storyflow_tts.engines.espeak import EspeakEngine
from storyflow_tts.errors import NothingToSay
from storyflow_tts.outputs import FILES, clean_words, write_outputs
from storyflow_tts.params import TtsParams


def test_timings_are_made_monotonic_and_kept_inside_the_audio() -> None:
    # Given untidy timings (overlaps, a start before the previous, an end past the audio)
    words = [Word("a", 0.0, 0.5), Word("b", 0.4, 0.45), Word("c", 0.3, 0.9), Word("d", 1.9, 2.5)]
    # When cleaned for a 2 s audio
    cleaned = clean_words(words, 2000)
    # Then start <= end <= next start <= duration, in whole ms
    assert [(w.start_ms, w.end_ms) for w in cleaned] == [(0, 400), (400, 400), (400, 900), (1900, 2000)]


def test_a_narration_writes_five_consistent_files(espeak: EspeakEngine, tmp_path: Path) -> None:
    # Given real speech of three sentences
    text = "The keeper lit the lamp. Its beam swept the water, over rocks and boats. Nobody thanked him."
    speech = espeak.synthesize(text, TtsParams(voice="bf_emma", lang="en-gb"))
    # When the outputs are written
    summary = write_outputs(speech, TtsParams(voice="bf_emma", lang="en-gb"), "espeak", tmp_path)
    # Then all five files exist
    assert {p.name for p in tmp_path.iterdir()} == set(FILES)
    # ... the WAV is the speech, 16-bit, at the engine's rate
    audio, rate = read_wav(tmp_path / "narration.wav")
    assert rate == speech.sample_rate and len(audio) == len(speech.audio)
    assert float(np.max(np.abs(audio - speech.audio))) < 1e-3
    # ... the m4a is AAC of the same length
    with av.open(str(tmp_path / "narration.m4a")) as container:
        stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio=0))
    assert stream.codec_context.name == "aac"
    assert abs(samples / stream.rate - speech.seconds) < 0.08
    # ... words.json has every word, monotonic, inside the audio
    words = json.loads((tmp_path / "words.json").read_text())
    assert [w["text"] for w in words["words"]] == text.split()
    assert words["duration_ms"] == int(speech.seconds * 1000)
    ends = [0] + [w["end_ms"] for w in words["words"]]
    for previous_end, word in zip(ends, words["words"], strict=False):
        assert previous_end <= word["start_ms"] <= word["end_ms"] <= words["duration_ms"]
    # ... and the SRT and VTT hold the same three cues, one per sentence
    srt = pysubs2.load(str(tmp_path / "narration.srt"))
    vtt = pysubs2.load(str(tmp_path / "narration.vtt"))
    assert [e.plaintext for e in srt] == [e.plaintext for e in vtt]
    assert len(srt) == 3
    assert (srt[0].plaintext, srt[2].plaintext) == ("The keeper lit the lamp.", "Nobody thanked him.")
    assert srt[1].plaintext.replace("\n", " ") == "Its beam swept the water, over rocks and boats."
    assert summary["cues"] == 3 and summary["words"] == len(text.split())
    assert srt[0].start == words["words"][0]["start_ms"]


def test_speech_without_audio_or_words_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NothingToSay):
        write_outputs(Speech(np.zeros(0, dtype=np.float32), 24000, []), TtsParams(), "x", tmp_path)
    with pytest.raises(NothingToSay):
        write_outputs(Speech(np.zeros(2400, dtype=np.float32), 24000, []), TtsParams(), "x", tmp_path)
