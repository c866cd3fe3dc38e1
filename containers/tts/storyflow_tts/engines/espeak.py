"""The CPU engine: espeak-ng (the library and data that espeakng-loader ships) through ctypes.

espeak-ng reports an event per word (its 1-based character position and length in the text, and the
sample it starts at) while it synthesises; a word ends where its audio falls silent before the next
event. A word's displayed text runs from its position to the next word's, so punctuation and quotes
stay with it and the cues read like the text. No weights, nothing downloaded; real speech.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from storyflow_tts.engines.base import Engine, Speech, Word
from storyflow_tts.errors import EngineFailed, ModelNotAvailable, NothingToSay
from storyflow_tts.params import TtsParams

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_END, EVENT_MSG_TERMINATED = 0, 1, 5, 6
PARAM_RATE = 1
DEFAULT_RATE = 175  # words per minute at speed 1.0
RATE_MIN, RATE_MAX = 80, 450
VOICES = {"en-us": "en-us", "en-gb": "en"}  # lang -> espeak-ng voice (its British English is `en`)
VARIANTS = {"f": "f3", "m": "m3"}  # the Kokoro voice's gender -> an espeak-ng variant
SILENCE = 0.01  # |amplitude| under this is silence when trimming a word's end
WINDOW_SECONDS = 0.005
OPENING = "\"'“‘([¿¡«"  # noqa: RUF001 (marks that open a word)

_LOCK = threading.Lock()  # espeak-ng keeps global state: one synthesis at a time per process


class _Id(ctypes.Union):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def espeak_voice(params: TtsParams) -> str:
    gender = params.voice[1:2]
    base = VOICES[params.lang]
    return f"{base}+{VARIANTS[gender]}" if gender in VARIANTS else base


def espeak_rate(speed: float) -> int:
    return max(RATE_MIN, min(RATE_MAX, round(DEFAULT_RATE * speed)))


class EspeakEngine(Engine):
    name = "espeak"

    def __init__(self) -> None:
        self._lib: Any = None
        self.sample_rate = 0

    def load(self) -> None:
        try:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (ImportError, OSError) as exc:
            raise ModelNotAvailable(f"espeak-ng is not available (espeakng-loader): {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        with _LOCK:
            rate = lib.espeak_Initialize(
                AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), INITIALIZE_DONT_EXIT
            )
        if rate <= 0:
            raise ModelNotAvailable(f"espeak-ng failed to initialise (data {data}): {rate}")
        self._lib, self.sample_rate = lib, int(rate)

    def synthesize(self, text: str, params: TtsParams) -> Speech:
        if self._lib is None:
            raise EngineFailed("the espeak engine is not loaded")
        chunks: list[npt.NDArray[np.int16]] = []
        events: list[tuple[int, int, int]] = []  # (type, text position (0-based), sample)

        def on_audio(wav: Any, count: int, event: Any) -> int:
            if wav and count > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            i = 0
            while event[i].type != EVENT_LIST_TERMINATED:
                e = event[i]
                if e.type in (EVENT_WORD, EVENT_END):
                    events.append((e.type, e.text_position - 1, e.sample))
                i += 1
            return 0

        callback = _CALLBACK(on_audio)
        encoded = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(encoded)
        with _LOCK:
            self._lib.espeak_SetSynthCallback(callback)
            voice = espeak_voice(params)
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineFailed(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(PARAM_RATE, espeak_rate(params.speed), 0)
            status = self._lib.espeak_Synth(
                buffer, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
            )
        if status != 0:
            raise EngineFailed(f"espeak_Synth failed with status {status}")
        if not chunks:
            raise NothingToSay("espeak-ng produced no audio for the text")
        audio = (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)
        return Speech(audio, self.sample_rate, word_timings(text, events, audio, self.sample_rate))


def word_timings(
    text: str, events: list[tuple[int, int, int]], audio: npt.NDArray[np.float32], sample_rate: int
) -> list[Word]:
    """Words from espeak-ng's events: each starts at its event's sample and ends where its audio falls
    silent before the next event; its text runs to the next word (punctuation and quotes stay with it)."""
    words: list[tuple[int, int]] = []  # (text position, start sample) of each distinct word
    for kind, position, sample in events:
        if kind != EVENT_WORD or (words and position <= words[-1][0]):
            continue
        if words and not any(c.isspace() for c in text[words[-1][0] : position]):
            continue  # inside the previous token (`21` is spoken as two words): one word on screen
        words.append((position, sample))
    boundaries = sorted({s for _, _, s in events} | {len(audio)})
    result: list[Word] = []
    window = max(1, int(sample_rate * WINDOW_SECONDS))
    carried = ""  # an opening mark before the next word (`said. "Hello`: the quote is Hello's)
    for i, (position, start) in enumerate(words):
        begin = 0 if i == 0 else position  # text before the first word (an opening quote) joins it
        stop = words[i + 1][0] if i + 1 < len(words) else len(text)
        pieces = text[begin:stop].split()
        following_prefix = pieces.pop() if len(pieces) > 1 and pieces[-1][0] in OPENING else ""
        shown = carried + " ".join(pieces)
        carried = following_prefix
        if not shown:
            continue
        following = next((b for b in boundaries if b > start), len(audio))
        end = _last_sound(audio, start, following, window)
        result.extend(_split(shown.split(), start / sample_rate, end / sample_rate))
    return result


def _split(tokens: list[str], start: float, end: float) -> list[Word]:
    """espeak-ng runs some words together (`of the` is one event): share the span by characters."""
    if len(tokens) == 1:
        return [Word(tokens[0], start, end)]
    total = sum(len(t) for t in tokens)
    words, at = [], start
    for token in tokens:
        step = (end - start) * len(token) / total
        words.append(Word(token, at, at + step))
        at += step
    return words


def _last_sound(audio: npt.NDArray[np.float32], start: int, stop: int, window: int) -> int:
    """The sample after the last window in [start, stop) whose peak is above SILENCE (at least one window)."""
    segment = np.abs(audio[start:stop])
    if segment.size == 0:
        return stop
    count = -(-segment.size // window)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[: segment.size] = segment
    loud = np.flatnonzero(padded.reshape(count, window).max(axis=1) > SILENCE)
    last = int(loud[-1]) + 1 if loud.size else 1
    return min(stop, start + last * window)
