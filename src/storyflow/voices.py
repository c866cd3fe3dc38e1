"""The voices and languages a tts job may ask for: the API and the queue intake validate requests with
these. The tts container ships its own copy (containers/tts/storyflow_tts/voices.py, it has no Lambda
layer); tests/unit/tts/test_tts_voices.py proves the two agree.

A voice is a Kokoro v1.0 voice name: its first letter is its accent (a: American, b: British English),
its second its gender (f, m).
"""

from __future__ import annotations

LANGS: dict[str, str] = {"en-us": "a", "en-gb": "b"}  # lang -> Kokoro lang_code
VOICES: tuple[str, ...] = (
    "af_alloy",
    "af_aoede",
    "af_bella",
    "af_heart",
    "af_jessica",
    "af_kore",
    "af_nicole",
    "af_nova",
    "af_river",
    "af_sarah",
    "af_sky",
    "am_adam",
    "am_echo",
    "am_eric",
    "am_fenrir",
    "am_liam",
    "am_michael",
    "am_onyx",
    "am_puck",
    "am_santa",
    "bf_alice",
    "bf_emma",
    "bf_isabella",
    "bf_lily",
    "bm_daniel",
    "bm_fable",
    "bm_george",
    "bm_lewis",
)
DEFAULT_VOICE = "af_heart"


def voice_lang(voice: str) -> str:
    """The language a voice was made for: `af_heart` -> `en-us`, `bm_george` -> `en-gb`."""
    for lang, code in LANGS.items():
        if voice.startswith(code):
            return lang
    raise ValueError(f"voice {voice!r} has no known language")
