"""POST /jobs {kind: tts}: a narration starts its workflow; bad input is a 400 naming the field and writes
nothing (no job item, no object, no execution)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storyflow import aws, keys
from tests.unit.api.conftest import ApiResult, executions, jobs_in_table, load_event, with_body

Call = Callable[[dict[str, Any]], ApiResult]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": ""}, "text", ["at least 1 character"]),
        ({"text": "  \n\t  "}, "text", ["at least 1 character"]),
        ({"text": "x" * 20001}, "text", ["at most 20000 characters"]),
        ({"text": "hi", "voice": "xx_nobody"}, "voice", ["unknown voice", "af_heart"]),
        ({"text": "hi", "speed": 2.5}, "speed", ["less than or equal to 2"]),
        ({"text": "hi", "speed": 0.4}, "speed", ["greater than or equal to 0.5"]),
        ({"text": "hi", "lang": "fr-fr"}, "lang", ["'en-us' or 'en-gb'"]),
        ({"text": "hi", "format": "ogg"}, "format", []),
        ({"text": "hi", "task_id": "a/b"}, "task_id", ["pattern"]),
    ],
    ids=["empty", "whitespace", "too-long", "unknown-voice", "too-fast", "too-slow", "lang", "format", "ids"],
)
def test_bad_narrations_are_400_naming_the_field_and_write_nothing(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    body: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    # Given a tts request with one bad field, When it is submitted
    result = call_api(with_body(load_event("api_submit_video"), {"kind": "tts", **body}))
    # Then 400 {"message", "field"} naming it, echoing none of the input, and nothing was written
    assert result.status == 400, result.body
    assert result.body["field"] == field
    assert field in result.body["message"]
    for word in words:
        assert word in result.body["message"]
    assert "xx_nobody" not in result.body["message"] and "xxxxxxxxxx" not in result.body["message"]
    assert_nothing_written()


def test_a_narration_starts_the_tts_workflow(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    # Given a valid narration, When submitted
    body = {"kind": "tts", "text": "  Hello there.  ", "voice": "bm_george", "speed": 1.25, "format": "m4a"}
    result = call_api(with_body(load_event("api_submit_video"), body))
    # Then 202 with a queued tts job, its execution started on the tts machine with the validated request
    assert result.status == 202, result.body
    job_id = result.body["job_id"]
    assert job_id.startswith("tts-")
    [item] = jobs_in_table(stack)
    assert item["request"]["text"] == "Hello there." and item["request"]["lang"] is None
    [execution] = executions()
    assert execution["name"] == job_id and execution["stateMachineArn"] == state_machines["tts"]
    started = aws.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert '"voice": "bm_george"' in started["input"]


def test_the_same_parent_and_task_ids_are_the_same_job(
    call_api: Call, state_machines: dict[str, str]
) -> None:
    body = {"kind": "tts", "text": "Once.", "parent_id": "story-9", "task_id": "scene-1"}
    first = call_api(with_body(load_event("api_submit_video"), body))
    again = call_api(with_body(load_event("api_submit_video"), body))
    assert first.status == again.status == 202
    assert first.body["job_id"] == again.body["job_id"] == keys.derived_job_id("tts", "story-9", "scene-1")
    assert len(executions()) == 1
