"""POST /jobs {kind: video}: the job id derives from parent_id + task_id (a repeat is the same job and
starts nothing), image inputs come from the stack's buckets or a presigned POST, bad input is a 400 naming
the field and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storyflow import aws, keys
from tests.unit.api.conftest import ApiResult, executions, jobs_in_table, load_event, with_body

Call = Callable[[dict[str, Any]], ApiResult]
VIDEO = {"kind": "video", "parent_id": "parent-1", "task_id": "task-1", "prompt": "a lighthouse at dusk"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def submit(call_api: Call, body: dict[str, Any]) -> ApiResult:
    return call_api(with_body(load_event("api_submit_video"), body))


def test_the_job_id_derives_from_parent_and_task_and_a_repeat_starts_nothing(
    call_api: Call, state_machines: dict[str, str]
) -> None:
    # When the same video task is submitted twice
    first, again = submit(call_api, VIDEO), submit(call_api, VIDEO)

    # Then both answers name the job derived from its ids, and one execution ran
    assert first.status == again.status == 202, (first.body, again.body)
    assert first.body["job_id"] == again.body["job_id"] == keys.derived_job_id("video", "parent-1", "task-1")
    assert len(executions()) == 1


def test_the_same_ids_with_other_parameters_are_a_409_naming_task_id(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    submit(call_api, VIDEO)
    other = submit(call_api, {**VIDEO, "prompt": "another film"})
    assert other.status == 409 and other.body["field"] == "task_id", other.body
    assert jobs_in_table(stack)[0]["request"]["prompt"] == "a lighthouse at dusk" and len(executions()) == 1


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"num_videos": 3}, "num_videos", "less than or equal to 2"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"guidance": 31}, "guidance", "less than or equal to 30"),
        ({"width": 1000}, "width", "multiple of 16"),
        ({"height": 721}, "height", "multiple of 16"),
        ({"num_frames": 120}, "num_frames", "4k+1"),
        ({"prompt": "x" * 4001}, "prompt", "at most 4000"),
        ({"image_uri": "https://example.com/a.png"}, "image_uri", "pattern"),
        (
            {"image_uri": "s3://storyflow-input/a.png", "image_upload": "image/png"},
            "image_upload",
            "not both",
        ),
    ],
)
def test_out_of_range_fields_are_a_400_naming_the_field(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    change: dict[str, Any],
    field: str,
    says: str,
) -> None:
    result = submit(call_api, {**VIDEO, **change})
    assert result.status == 400, result.body
    assert result.body["field"] == field and says in result.body["message"], result.body
    assert_nothing_written()


def test_an_image_uri_outside_the_stacks_buckets_is_a_400(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    result = submit(call_api, {**VIDEO, "image_uri": "s3://someone-elses-bucket/cat.png"})
    assert result.status == 400 and result.body["field"] == "image_uri", result.body
    assert "this stack's buckets" in result.body["message"]
    assert jobs_in_table(stack) == [] and executions() == []


def test_an_image_uri_that_is_not_an_image_is_a_400(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    aws.client("s3").put_object(Bucket=stack["INPUT_BUCKET"], Key="in/notes.png", Body=b"hello, not pixels")
    result = submit(call_api, {**VIDEO, "image_uri": f"s3://{stack['INPUT_BUCKET']}/in/notes.png"})
    assert result.status == 400 and result.body["field"] == "image_uri", result.body
    assert "not an image" in result.body["message"]


def test_an_image_in_the_stack_starts_image_to_video(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    aws.client("s3").put_object(Bucket=stack["INPUT_BUCKET"], Key="in/cat.png", Body=PNG)
    result = submit(call_api, {**VIDEO, "image_uri": f"s3://{stack['INPUT_BUCKET']}/in/cat.png"})
    assert result.status == 202 and result.body["upload"] is None, result.body
    assert len(executions()) == 1


def test_an_image_upload_gets_a_presigned_post_for_that_type_and_waits_for_it(
    call_api: Call, state_machines: dict[str, str], stack: dict[str, Any]
) -> None:
    # When a video job asks to upload a JPEG
    result = submit(call_api, {**VIDEO, "image_upload": "image/jpeg"})

    # Then a presigned POST for input/{job_id}/image.upload with that Content-Type; nothing runs yet
    assert result.status == 202, result.body
    ticket = result.body["upload"]
    assert ticket["key"] == f"input/{result.body['job_id']}/image.upload"
    assert ticket["fields"]["Content-Type"] == "image/jpeg"
    assert executions() == [] and jobs_in_table(stack)[0]["status"] == "queued"
