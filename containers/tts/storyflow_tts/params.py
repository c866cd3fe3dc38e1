"""The invocation's params (``voice``, ``speed``, ``lang``, ``format``) and the text it reads from
``input_uri``, validated the way the API validates them (unknown voice, unsupported language, speed out
of 0.5-2.0 or text over 20,000 characters are an :class:`InvalidParams`, 400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storyflow_tts.errors import InvalidParams, NothingToSay
from storyflow_tts.voices import DEFAULT_VOICE, LANGS, VOICES, voice_lang

MAX_TEXT_CHARS = 20000
SPEED_MIN, SPEED_MAX = 0.5, 2.0
FORMATS = ("wav", "m4a")


@dataclass(frozen=True)
class TtsParams:
    voice: str = DEFAULT_VOICE
    speed: float = 1.0
    lang: str = "en-us"
    format: str = "wav"  # the audio the manifest names first; both narration.wav and .m4a are written

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> TtsParams:
        unknown = sorted(set(params) - {"voice", "speed", "lang", "format"})
        if unknown:
            raise InvalidParams(f"unknown params {unknown}; expected voice, speed, lang, format")
        voice = params.get("voice") or DEFAULT_VOICE
        if voice not in VOICES:
            raise InvalidParams(f"voice: unknown voice {voice!r}; known: {', '.join(VOICES)}")
        lang = str(params.get("lang") or voice_lang(str(voice)))
        if lang not in LANGS:
            raise InvalidParams(f"lang: unsupported language {lang!r}; supported: {', '.join(LANGS)}")
        speed = params.get("speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise InvalidParams(f"speed: must be a number, got {speed!r}")
        if not SPEED_MIN <= float(speed) <= SPEED_MAX:
            raise InvalidParams(f"speed: must be within {SPEED_MIN}-{SPEED_MAX}, got {speed}")
        fmt = params.get("format") or "wav"
        if fmt not in FORMATS:
            raise InvalidParams(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return cls(str(voice), float(speed), str(lang), str(fmt))


def read_text(document: Any) -> str:
    """The text of the input document ``{"text": "..."}`` (other fields are ignored)."""
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        raise InvalidParams('the input must be a JSON object {"text": "..."}')
    text = str(document["text"]).strip()
    if not text:
        raise NothingToSay("text: is empty or whitespace only")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidParams(f"text: {len(text)} characters; at most {MAX_TEXT_CHARS}")
    return text
