"""POST /jobs {kind: story}: a prompt or scenes, checked before anything is written (issue 11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storyflow.registry import get
from tests.unit.api.conftest import ApiResult, load_event, with_body

Call = Callable[[dict[str, Any]], ApiResult]
SCENES = [{"text": "The fox jumps.", "visual_prompt": "a fox mid-air"}, {"text": "It lands."}]


def submit(call_api: Call, body: dict[str, Any]) -> ApiResult:
    return call_api(with_body(load_event("api_submit_video"), {"kind": "story", **body}))


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"scenes": []}, "scenes", "at least 1"),
        ({"scenes": [{"text": "t"}] * 51}, "scenes", "at most 50"),
        ({"scenes": [*SCENES, {"text": ""}]}, "scenes.2.text", "at least 1 character"),
        ({"scenes": SCENES, "aspect": "4:3"}, "aspect", "16:9"),
        ({"scenes": SCENES, "subtitles": "loud"}, "subtitles", "burned"),
        ({"scenes": SCENES, "stereo": True}, "stereo", "full"),
        (
            {"scenes": SCENES, "music_uri": "s3://someone-elses-bucket/song.mp3"},
            "music_uri",
            "stack's buckets",
        ),
        (
            {"scenes": [{"text": "t", "image_uri": "s3://elsewhere-bucket/a.png"}]},
            "scenes.0.image_uri",
            "buckets",
        ),
    ],
)
def test_bad_story_is_400_naming_the_field_and_writes_nothing(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    # Given a story request with one bad field  When submitted
    result = submit(call_api, body)
    # Then 400 naming the field; no item, object or execution
    assert result.status == 400, result.body
    assert result.body["field"] == field and says in result.body["message"], result.body
    assert_nothing_written()


def test_neither_prompt_nor_scenes_is_400(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None]
) -> None:
    result = submit(call_api, {"voice": "af_heart"})
    assert result.status == 400 and "prompt or scenes" in result.body["message"], result.body
    assert_nothing_written()


def test_music_in_the_stacks_bucket_and_given_scenes_are_accepted(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    music = f"s3://{stack['INPUT_BUCKET']}/music/theme.mp3"
    body = {"scenes": SCENES, "aspect": "9:16", "subtitles": "both", "music_uri": music, "stereo": "half"}
    result = submit(call_api, body)
    assert result.status == 202, result.body


def test_the_story_payload_carries_the_validated_request() -> None:
    workflow = get("story")
    request = workflow.request.model_validate({"scenes": SCENES})
    payload = workflow.payload("sy-20261201-0a1b2c3d4e5f", request, None)
    assert payload["request"]["scenes"][1] == {"text": "It lands.", "visual_prompt": None, "image_uri": None}
    assert payload["request"]["aspect"] == "16:9" and payload["request"]["stereo"] is None
