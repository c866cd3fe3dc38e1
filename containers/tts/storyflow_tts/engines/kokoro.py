"""The production engine: Kokoro-82M (the ``kokoro`` package's KPipeline over a KModel) on GPU or CPU.

Everything comes from ``MODEL_DIR`` (default ``/opt/ml/model``: the image's baked weights, or the SageMaker
model artifact unpacked there), never from a hub:

    MODEL_DIR/config.json          the model's config (with its phoneme vocab)
    MODEL_DIR/kokoro-v1_0.pth      the weights (or the only *.pth there; env KOKORO_WEIGHTS names another)
    MODEL_DIR/voices/{voice}.pt    one [510, 1, 256] style tensor per voice

misaki's English G2P needs the spaCy model ``en_core_web_sm`` installed (the image installs it at build):
if it is missing, loading fails with ModelNotAvailable instead of letting misaki download it.

Text is split at sentence ends (and newlines) before G2P; KPipeline further splits a sentence over 510
phonemes at its last clause. Token timestamps restart at 0 in every chunk, so each chunk's tokens are
shifted by the audio length of the chunks before it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from storyflow_tts.engines.base import Engine, Speech, Word
from storyflow_tts.errors import EngineFailed, InvalidParams, ModelNotAvailable, NothingToSay
from storyflow_tts.model_layout import WEIGHTS, missing_files  # shared with `storyflow models`
from storyflow_tts.params import TtsParams
from storyflow_tts.voices import LANGS

SAMPLE_RATE = 24_000
REPO_ID = "hexgrad/Kokoro-82M"  # only names the model for KModel/KPipeline; nothing is downloaded
DEFAULT_MODEL_DIR = "/opt/ml/model"
SPACY_MODEL = "en_core_web_sm"
# Sentence ends (with a closing quote or bracket) and line breaks: each piece is one G2P call.
SENTENCES = r"\n+|(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+"  # noqa: RUF001
_WORDLIKE = re.compile(r"\w")


def model_dir() -> Path:
    return Path(os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)


def weights_path(folder: Path) -> Path:
    named = os.environ.get("KOKORO_WEIGHTS")
    if named:
        return folder / named
    if (folder / WEIGHTS).is_file():
        return folder / WEIGHTS
    found = sorted(folder.glob("*.pth"))
    if len(found) != 1:
        raise ModelNotAvailable(f"no Kokoro weights in {folder}: expected {WEIGHTS} or exactly one *.pth")
    return found[0]


class KokoroEngine(Engine):
    name = "kokoro"

    def __init__(self, folder: Path | None = None, device: str | None = None) -> None:
        self.folder = folder
        self.device = device or os.environ.get("TTS_DEVICE") or None
        self.model: Any = None
        self.pipelines: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def voices_dir(self) -> Path:
        return (self.folder or model_dir()) / "voices"

    def load(self) -> None:
        folder = self.folder or model_dir()
        missing = missing_files(folder, os.environ.get("KOKORO_WEIGHTS"))
        if missing:  # the layout `storyflow models check tts` validates (storyflow_tts.model_layout)
            raise ModelNotAvailable(
                f"Kokoro model folder {folder} (MODEL_DIR) lacks {', '.join(missing)}; "
                "weights are never downloaded"
            )
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ModelNotAvailable(
                f"no Kokoro config.json in {folder} (MODEL_DIR); weights are never downloaded"
            )
        weights = weights_path(folder)
        if not weights.is_file():
            raise ModelNotAvailable(f"Kokoro weights {weights} do not exist")
        if not self.voices_dir.is_dir():
            raise ModelNotAvailable(f"no voices folder {self.voices_dir} (voices/{{voice}}.pt)")
        os.environ.setdefault(
            "HF_HUB_OFFLINE", "1"
        )  # belt and braces: any hub call fails instead of fetching
        try:
            import spacy.util
            import torch
            from kokoro import KModel, KPipeline
        except ImportError as exc:
            raise ModelNotAvailable(f"the kokoro engine needs kokoro, misaki[en] and torch: {exc}") from exc
        if not spacy.util.is_package(SPACY_MODEL):
            raise ModelNotAvailable(
                f"spaCy model {SPACY_MODEL} is not installed (misaki would download it); install it at build"
            )
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        try:
            model = KModel(repo_id=REPO_ID, config=config, model=str(weights)).to(device).eval()
            self.pipelines = {
                lang: KPipeline(lang_code=code, repo_id=REPO_ID, model=model) for lang, code in LANGS.items()
            }
        except Exception as exc:
            raise ModelNotAvailable(
                f"Kokoro failed to load from {folder}: {type(exc).__name__}: {exc}"
            ) from exc
        self.model, self.device = model, device

    def voice_file(self, voice: str) -> Path:
        path = self.voices_dir / f"{voice}.pt"
        if not path.is_file():
            raise InvalidParams(f"voice: {voice!r} is not among this model's voices ({self.voices_dir})")
        return path

    def synthesize(self, text: str, params: TtsParams) -> Speech:
        if self.model is None:
            raise EngineFailed("the kokoro engine is not loaded")
        pipeline = self.pipelines[params.lang]
        voice = str(self.voice_file(params.voice))
        pieces: list[npt.NDArray[np.float32]] = []
        words: list[Word] = []
        offset = 0  # samples of audio before the current chunk
        with self._lock:
            for result in pipeline(text, voice=voice, speed=params.speed, split_pattern=SENTENCES):
                if result.audio is None:
                    continue
                audio = result.audio.detach().cpu().numpy().astype(np.float32).reshape(-1)
                words.extend(chunk_words(result.tokens or [], offset / SAMPLE_RATE))
                pieces.append(audio)
                offset += len(audio)
        if not pieces:
            raise NothingToSay("Kokoro produced no audio for the text (no phonemes)")
        return Speech(np.concatenate(pieces), SAMPLE_RATE, words, chunks=len(pieces))


def chunk_words(tokens: list[Any], offset: float) -> list[Word]:
    """One chunk's words from misaki tokens (``text``, ``whitespace``, ``start_ts``/``end_ts`` in seconds
    from the chunk's start), shifted by ``offset``. Punctuation joins the word it touches (a closing mark
    the one before, an opening mark the one after); a word the model gave no timestamps starts and ends
    where the previous one ended."""
    words: list[Word] = []
    prefix = ""
    glued = False  # the previous token had no whitespace after it
    for token in tokens:
        text = str(token.text)
        if not _WORDLIKE.search(text):
            if words and glued:
                last = words[-1]
                words[-1] = Word(last.text + text, last.start, last.end)
            else:
                prefix += text
            glued = not token.whitespace
            continue
        start, end = token.start_ts, token.end_ts
        if start is None or end is None:
            start = end = (words[-1].end - offset) if words else 0.0
        words.append(Word(prefix + text, offset + float(start), offset + float(end)))
        prefix = ""
        glued = not token.whitespace
    return words
