"""The Kokoro production path on a randomly initialised KModel (no weights, nothing downloaded): the real
MODEL_DIR loading, KPipeline's G2P and chunking, offset accumulation across chunks and the output files.

Needs the optional `kokoro` extra (`make kokoro`: torch CPU, kokoro, misaki[en], spaCy's en_core_web_sm);
skipped without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kokoro", reason="the kokoro extra is not installed (make kokoro)")
spacy_util = pytest.importorskip("spacy.util")
if not spacy_util.is_package("en_core_web_sm"):
    pytest.skip("spaCy's en_core_web_sm is not installed (make kokoro)", allow_module_level=True)

from storyflow_tts.engines.kokoro import SAMPLE_RATE, KokoroEngine, chunk_words  # noqa: E402
from storyflow_tts.outputs import write_outputs  # noqa: E402
from storyflow_tts.params import TtsParams  # noqa: E402

from tests.unit.tts.tiny_kokoro import build_model_dir  # noqa: E402

TEXT = 'The lamp was lit. "Who lit it?" asked the boy.'


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> KokoroEngine:
    import torch

    torch.manual_seed(0)
    folder = build_model_dir(tmp_path_factory.mktemp("kokoro"), [TEXT], voices=("af_heart", "bm_george"))
    loaded = KokoroEngine(folder, device="cpu")
    loaded.load()
    return loaded


def test_sentences_are_chunks_whose_timestamps_carry_the_audio_before_them(
    engine: KokoroEngine, tmp_path: Path
) -> None:
    # When the random model speaks two sentences
    speech = engine.synthesize(TEXT, TtsParams())
    # Then it made one chunk per sentence (`it?"` ends one), 24 kHz audio
    assert speech.chunks == 3
    assert speech.sample_rate == SAMPLE_RATE and speech.seconds > 0
    # ... every word is timed, punctuation on its word, and each chunk's words come after the audio before
    # it: chunk timestamps restart at 0, so without the running offset "Who" would start near 0 again
    assert [w.text for w in speech.words] == TEXT.split()
    first_chunk_end = speech.words[3].end
    assert speech.words[4].text == '"Who' and speech.words[4].start >= first_chunk_end > 0.1
    assert speech.words[7].text == "asked" and speech.words[7].start >= speech.words[6].end
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts)
    assert speech.words[-1].end <= speech.seconds + 1e-6
    # ... and the outputs are written from it like any engine's
    summary = write_outputs(speech, TtsParams(), engine.name, tmp_path)
    assert summary["chunks"] == 3 and summary["words"] == len(TEXT.split())
    words = json.loads((tmp_path / "words.json").read_text())
    assert words["sample_rate"] == SAMPLE_RATE
    assert words["words"][-1]["end_ms"] <= words["duration_ms"]


def test_a_british_voice_uses_the_british_pipeline(engine: KokoroEngine) -> None:
    speech = engine.synthesize("Lit.", TtsParams(voice="bm_george", lang="en-gb"))
    assert speech.chunks == 1 and float(np.max(np.abs(speech.audio))) > 0


def test_a_voice_that_is_not_baked_is_invalid_params(engine: KokoroEngine) -> None:
    from storyflow_tts.errors import InvalidParams

    with pytest.raises(InvalidParams, match="voice"):
        engine.synthesize("Hello.", TtsParams(voice="af_sky"))


def test_chunk_offsets_shift_every_token() -> None:
    class Token:
        def __init__(self, text: str, whitespace: str, start: float | None, end: float | None) -> None:
            self.text, self.whitespace, self.start_ts, self.end_ts = text, whitespace, start, end

    tokens = [Token("Hi", "", 0.0, 0.2), Token(",", " ", None, None), Token("you", "", 0.3, 0.5)]
    words = chunk_words(tokens, offset=10.0)
    assert [(w.text, w.start, w.end) for w in words] == [("Hi,", 10.0, 10.2), ("you", 10.3, 10.5)]
