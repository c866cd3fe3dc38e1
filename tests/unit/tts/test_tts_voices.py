"""The voice catalog has one meaning on both sides, and the container validates params like the API."""

from __future__ import annotations

import pytest
from storyflow_tts import voices as container_voices
from storyflow_tts.errors import InvalidParams, NothingToSay
from storyflow_tts.params import TtsParams, read_text

from storyflow import voices as layer_voices
from storyflow.models import MAX_TEXT_CHARS, TtsRequest


def test_the_container_copy_of_the_catalog_agrees_with_the_layers() -> None:
    assert container_voices.VOICES == layer_voices.VOICES
    assert container_voices.LANGS == layer_voices.LANGS
    assert container_voices.DEFAULT_VOICE == layer_voices.DEFAULT_VOICE
    assert set(TtsRequest.model_json_schema()["properties"]["voice"]["enum"]) == set(layer_voices.VOICES)

    assert TtsParams.from_dict({"voice": "bm_george"}).lang == "en-gb"
    assert TtsParams.from_dict({}).lang == "en-us"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"voice": "zz_nobody"}, "voice"),
        ({"lang": "fr-fr"}, "lang"),
        ({"speed": 2.5}, "speed"),
        ({"speed": 0.4}, "speed"),
        ({"speed": True}, "speed"),
        ({"format": "ogg"}, "format"),
        ({"pitch": 3}, "pitch"),
    ],
)
def test_bad_params_are_invalid_params_naming_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParams, match=field):
        TtsParams.from_dict(params)


def test_the_input_text_is_checked_like_the_api_checks_it() -> None:
    assert read_text({"text": "  Hello.  ", "voice": "ignored"}) == "Hello."
    with pytest.raises(NothingToSay):
        read_text({"text": " \n\t "})
    with pytest.raises(InvalidParams, match="at most"):
        read_text({"text": "x" * (MAX_TEXT_CHARS + 1)})
    with pytest.raises(InvalidParams, match="JSON object"):
        read_text(["not", "an", "object"])
