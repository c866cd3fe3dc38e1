"""The espeak engine speaks for real and times every word (espeak-ng through espeakng-loader, no weights)."""

from __future__ import annotations

import numpy as np
import pytest
from storyflow_tts.engines import create_engine, engine_name
from storyflow_tts.engines.espeak import EspeakEngine, espeak_rate, espeak_voice, word_timings
from storyflow_tts.errors import UnknownEngine
from storyflow_tts.params import TtsParams

TEXT = '"Hello," she said. The lamp was lit at dusk; its beam swept the bay. Did anyone see? Yes!'


def test_it_speaks_real_audio_with_one_timing_per_word(espeak: EspeakEngine) -> None:
    # When the engine speaks a text
    speech = espeak.synthesize(TEXT, TtsParams())
    # Then the audio is speech-like: seconds long, loud in places, silent between sentences
    assert speech.sample_rate == 22050
    assert 3 < speech.seconds < 12
    assert float(np.max(np.abs(speech.audio))) > 0.1
    # ... and every word of the text is there once, with its punctuation, in order
    assert [w.text for w in speech.words] == TEXT.split()
    # ... each starting no earlier than the last one ended, inside the audio
    previous = 0.0
    for word in speech.words:
        assert previous <= word.start < word.end <= speech.seconds + 1e-6, word
        previous = word.end
    # ... and the audio under a word is sound, not silence
    first = speech.words[1]
    segment = speech.audio[int(first.start * 22050) : int(first.end * 22050)]
    assert float(np.sqrt(np.mean(segment**2))) > 0.01


def test_speed_and_voice_change_the_speech(espeak: EspeakEngine) -> None:
    slow = espeak.synthesize("The quick brown fox jumps over the lazy dog.", TtsParams(speed=0.7))
    fast = espeak.synthesize("The quick brown fox jumps over the lazy dog.", TtsParams(speed=1.6))
    assert slow.seconds > 1.6 * fast.seconds
    british = espeak.synthesize("Tomato.", TtsParams(voice="bm_george", lang="en-gb"))
    american = espeak.synthesize("Tomato.", TtsParams(voice="am_adam", lang="en-us"))
    assert not np.array_equal(british.audio[: len(american.audio)], american.audio[: len(british.audio)])
    assert espeak_voice(TtsParams(voice="bf_emma", lang="en-gb")) == "en+f3"
    assert espeak_voice(TtsParams(voice="am_adam", lang="en-us")) == "en-us+m3"
    assert (espeak_rate(0.5), espeak_rate(1.0), espeak_rate(2.0)) == (88, 175, 350)


def test_a_long_text_keeps_its_timings_to_the_end(espeak: EspeakEngine) -> None:
    # Given 40 sentences (about 320 words)
    text = " ".join(f"This is sentence number {n} of the test." for n in range(1, 41))
    speech = espeak.synthesize(text, TtsParams())
    # Then the last word ends near the end of the audio (no drift, no lost words)
    assert len(speech.words) == len(text.split())
    assert speech.seconds - speech.words[-1].end < 0.5


def test_word_timings_from_events_keep_opening_marks_with_their_word() -> None:
    # Given espeak-style events: (type 1 = word, 0-based position, start sample)
    text = 'One. "Two," three'
    events = [(1, 0, 0), (1, 6, 100), (1, 12, 200)]
    audio = np.zeros(300, dtype=np.float32)
    audio[0:50] = audio[100:150] = audio[200:260] = 0.5
    words = word_timings(text, events, audio, sample_rate=100)
    assert [w.text for w in words] == ["One.", '"Two,"', "three"]
    # ... and a word ends where its sound stops, not where the next one starts
    assert words[0].end == pytest.approx(0.5, abs=0.05)
    assert words[2].end == pytest.approx(2.6, abs=0.05)


def test_the_engine_comes_from_env_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE", "espeak")
    assert isinstance(create_engine(), EspeakEngine)
    monkeypatch.setenv("ENGINE", "kokoro")
    assert engine_name() == "kokoro"
    with pytest.raises(UnknownEngine):
        engine_name("festival")
