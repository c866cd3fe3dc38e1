"""Bad input gets a clear 4xx naming the field, and changes nothing: no item, no object, no execution."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from storyflow.jobstore import JobStore, encode_page_token
from storyflow.models import JobKind, JobStatus
from tests.unit.api.conftest import ApiResult, jobs_in_table, load_event, with_body, with_job_id, with_query

Call = Callable[[dict[str, Any]], ApiResult]
VIDEO = {"kind": "video", "parent_id": "parent-1", "task_id": "task-1", "prompt": "a lighthouse"}
JOB_ROUTES = ("api_get_job", "api_cancel_job", "api_job_outputs")


def refused(result: ApiResult, status: int, field: str, *words: str) -> None:
    """The answer is `status` with {"message", "field"}; a 400's message names the field (and the words)."""
    assert result.status == status, result.body
    assert set(result.body) == {"message", "field"}, result.body
    assert result.body["field"] == field, result.body
    if status == 400:
        assert field in result.body["message"], result.body
    for word in words:
        assert word in result.body["message"], result.body


# ---------------------------------------------------------------- POST /jobs
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**VIDEO, "num_videos": 3}, "num_videos", ["num_videos: Input should be less than or equal to 2"]),
        ({**VIDEO, "width": 1000}, "width", ["multiple of 16"]),
        ({**VIDEO, "height": 730}, "height", ["multiple of 16"]),
        ({**VIDEO, "steps": 0}, "steps", ["greater than or equal to 1"]),
        ({**VIDEO, "guidance": -1}, "guidance", []),
        ({**VIDEO, "seed": -5}, "seed", []),
        ({**VIDEO, "prompt": ""}, "prompt", ["at least 1 character"]),
        ({k: v for k, v in VIDEO.items() if k != "prompt"}, "prompt", ["Field required"]),
        ({**VIDEO, "parent_id": "../etc"}, "parent_id", ["pattern"]),
        ({**VIDEO, "task_id": "a/b"}, "task_id", ["pattern"]),
        ({**VIDEO, "colour": "red"}, "colour", ["Extra inputs are not permitted"]),
        ({**VIDEO, "image_uri": "http://example.com/a.png"}, "image_uri", []),
        ({"kind": "tts", "text": "hi", "speed": 9}, "speed", []),
        ({"kind": "tts", "text": "hi", "voice": "../x"}, "voice", []),
        ({"kind": "story", "scenes": []}, "scenes", []),
        ({"kind": "story", "scenes": [{"visual_prompt": "p"}]}, "scenes.0.text", ["Field required"]),
        ({"kind": "story", "scenes": [{"text": "  "}]}, "scenes.0.text", ["at least 1 character"]),
        ({"kind": "story", "scenes": [{"text": "t"}] * 51}, "scenes", ["at most 50"]),
        ({"kind": "story", "prompt": "p", "aspect": "4:3"}, "aspect", []),
        ({"kind": "story", "prompt": "p", "stereo": "diagonal"}, "stereo", []),
        ({"kind": "story", "prompt": "p", "voice": "nobody"}, "voice", ["unknown voice"]),
        ({"kind": "story", "prompt": "p", "music_uri": "http://x/a.mp3"}, "music_uri", []),
        ({"kind": "story", "prompt": "p", "scenes": [{"text": "t"}]}, "scenes", ["not both"]),
        ({"kind": "stereo", "max_upload_bytes": 0}, "max_upload_bytes", []),
        ({"kind": "stereo", "layout": "diagonal"}, "layout", []),
        ({"kind": "stereo", "baseline": 5}, "baseline", []),
    ],
    ids=lambda value: None if not isinstance(value, str) else value,
)
def test_out_of_range_fields_are_400_naming_the_field(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    body: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    # Given a request with one bad field (every kind has a workflow)
    # When it is submitted
    result = call_api(with_body(load_event("api_submit_video"), body))

    # Then 400 naming the field, and nothing was written
    refused(result, 400, field, *words)
    assert_nothing_written()


def test_every_failing_field_is_named(call_api: Call, state_machines: dict[str, str]) -> None:
    # Given two bad fields  When submitted  Then both are named, the first as `field`
    result = call_api(with_body(load_event("api_submit_video"), {**VIDEO, "num_videos": 3, "steps": 0}))
    assert result.status == 400
    assert "num_videos:" in result.body["message"] and "steps:" in result.body["message"]


def test_a_100_kb_prompt_is_refused_naming_prompt(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None]
) -> None:
    # Given a video request whose prompt is 100 kB  When submitted
    result = call_api(with_body(load_event("api_submit_video"), {**VIDEO, "prompt": "x" * 100_000}))

    # Then 400 naming prompt and its limit; nothing written
    refused(result, 400, "prompt", "at most 4000 characters")
    assert_nothing_written()


def test_a_valid_body_over_64_kb_is_413(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None]
) -> None:
    # Given a story whose every field is in range but whose body is ~90 kB
    scenes = [{"text": "n" * 4000, "visual_prompt": "p" * 500} for _ in range(20)]
    # When it is submitted
    result = call_api(with_body(load_event("api_submit_video"), {"kind": "story", "scenes": scenes}))

    # Then 413 with the limit in the reason; nothing written
    refused(result, 413, "body", "65536 bytes")
    assert_nothing_written()


@pytest.mark.parametrize(
    ("raw", "field", "word"),
    [
        ('{"kind": "video", ', "body", "malformed JSON"),
        ("not json at all", "body", "malformed JSON"),
        ("[1, 2]", "body", "JSON object"),
        ('"video"', "body", "JSON object"),
        ("{}", "kind", "missing"),
        ('{"kind": "hologram"}', "kind", "'hologram'"),
        ('{"kind": null}', "kind", "kind"),
    ],
)
def test_malformed_or_unknown_bodies_are_400(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    raw: str,
    field: str,
    word: str,
) -> None:
    # Given a body that is not JSON, not an object, or of no known kind  When submitted
    result = call_api(with_body(load_event("api_submit_video"), raw))

    # Then 400 with the reason; nothing written
    refused(result, 400, field, word)
    assert_nothing_written()


@pytest.mark.parametrize(
    ("raw", "base64_encoded", "words"),
    [
        # An array of valid jobs: Powertools alone would take its first element and create a job.
        (json.dumps([{**VIDEO}, {**VIDEO}]), False, ("JSON object", "array")),
        ("[" * 5000 + "]" * 5000, False, ("nested deeper",)),
        ('{"kind": "video", "a": ' + "[" * 100 + "]" * 100 + "}", False, ("nested deeper",)),
        ('{"kind": "video", "a": ' + "[" * 100000 + "]" * 100000 + "}", False, ("nested deeper",)),
        (base64.b64encode(b'{"kind": "video", "prompt": "caf\xe9"}').decode(), True, ("UTF-8", "0xe9")),
        (base64.b64encode('{"kind": "video"}'.encode("utf-16")).decode(), True, ("UTF-8", "UTF-16")),
        (base64.b64encode('{"kind": "video"}'.encode("utf-16-le")).decode(), True, ("UTF-8", "UTF-16")),
        ("%%% not base64 %%%", True, ("base64",)),
    ],
)
def test_bodies_whose_bytes_the_api_refuses_are_400_on_body(
    call_api: Call,
    state_machines: dict[str, str],
    assert_nothing_written: Callable[[], None],
    raw: str,
    base64_encoded: bool,
    words: tuple[str, ...],
) -> None:
    # Given a body that is an array, nested too deep, not UTF-8, or not decodable  When submitted
    event = with_body(load_event("api_submit_video"), raw)
    event["isBase64Encoded"] = base64_encoded
    result = call_api(event)

    # Then 400 naming the body (never a 500, never a job from part of it); nothing written
    refused(result, 400, "body", *words)
    assert_nothing_written()


def test_empty_body_is_400(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None]
) -> None:
    # Given POST /jobs with no body at all  When handled  Then 400; nothing written
    result = call_api(with_body(load_event("api_submit_video"), None))
    assert result.status == 400, result.body
    assert_nothing_written()


def test_a_kind_without_a_workflow_in_this_stack_is_400_and_writes_nothing(
    call_api: Call, stack: dict[str, Any], assert_nothing_written: Callable[[], None]
) -> None:
    # Given a stack that deploys no video state machine (no VIDEO_STATE_MACHINE_ARN)
    # When a valid video job is submitted
    result = call_api(load_event("api_submit_video"))

    # Then 400 on kind, and no item was created (the check comes before the write)
    refused(result, 400, "kind", "no workflow")
    assert_nothing_written()


def test_non_json_content_type_is_415(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None]
) -> None:
    # Given a form-encoded body  When submitted  Then 415 asking for JSON; nothing written
    event = load_event("api_submit_video")
    event["headers"]["Content-Type"] = "text/plain"
    event["multiValueHeaders"]["Content-Type"] = ["text/plain"]
    result = call_api(event)
    refused(result, 415, "body", "application/json")
    assert_nothing_written()


# ---------------------------------------------------------------- job id in the path
@pytest.mark.parametrize("route", JOB_ROUTES)
@pytest.mark.parametrize(
    "job_id", ["..", "short", "UPPER-20261123-abc", "a" * 65, "x.y-12345678", "a%2F..%2Fxxxx"]
)
def test_job_ids_outside_the_format_are_400_before_any_lookup(
    call_api: Call, stack: dict[str, Any], assert_nothing_written: Callable[[], None], route: str, job_id: str
) -> None:
    # Given a job route whose id is not the project's format
    event = with_job_id(load_event(route), job_id)

    # When handled  Then 400 on job_id (DynamoDB and S3 are never asked); nothing written
    refused(call_api(event), 400, "job_id", "pattern")
    assert_nothing_written()


@pytest.mark.parametrize("route", JOB_ROUTES)
def test_a_job_id_with_slashes_never_reaches_a_route(
    call_api: Call, stack: dict[str, Any], assert_nothing_written: Callable[[], None], route: str
) -> None:
    # Given a path-traversal id (its slashes make it another path)
    event = with_job_id(load_event(route), "../../etc/passwd")

    # When handled  Then no route matches: a JSON 404, and nothing is read or written
    result = call_api(event)
    assert result.status == 404 and "no route" in result.body["message"]
    assert_nothing_written()


@pytest.mark.parametrize("route", JOB_ROUTES)
def test_unknown_job_is_404(call_api: Call, stack: dict[str, Any], route: str) -> None:
    # Given no such job  When any job route is asked  Then 404 on job_id, and still no item
    result = call_api(with_job_id(load_event(route), "video-20261123-ffffffffffff"))
    refused(result, 404, "job_id", "not found")
    assert jobs_in_table(stack) == []


# ---------------------------------------------------------------- state conflicts
def _finished_job(stack: dict[str, Any], status: JobStatus) -> str:
    job_id = f"tts-20261123-{status.value[:4]:0<12}"
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.TTS, job_id, {})
    if status is not JobStatus.CANCELLED:
        store.transition(job_id, JobStatus.RUNNING)
    store.transition(job_id, status)
    return job_id


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_of_a_finished_job_is_409_and_changes_nothing(
    call_api: Call, stack: dict[str, Any], status: JobStatus
) -> None:
    # Given a finished job
    job_id = _finished_job(stack, status)
    before = jobs_in_table(stack)

    # When it is cancelled
    result = call_api(with_job_id(load_event("api_cancel_job"), job_id))

    # Then 409 saying what it is; the item is untouched
    refused(result, 409, "status", status.value)
    assert jobs_in_table(stack) == before


@pytest.mark.parametrize(
    "status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED]
)
def test_outputs_before_completion_are_409(call_api: Call, stack: dict[str, Any], status: JobStatus) -> None:
    # Given a job that is not completed
    store = JobStore(stack["JOBS_TABLE"])
    job_id = "tts-20261123-0123456789ab"
    store.create(JobKind.TTS, job_id, {})
    if status is not JobStatus.QUEUED:
        if status is not JobStatus.CANCELLED:
            store.transition(job_id, JobStatus.RUNNING)
        if status is not JobStatus.RUNNING:
            store.transition(job_id, status)

    # When its outputs are asked for  Then 409 naming the status
    refused(call_api(with_job_id(load_event("api_job_outputs"), job_id)), 409, "status", status.value)


# ---------------------------------------------------------------- GET /jobs
def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "queued", "next": "%%%not-a-token"}, "next"),
        ({"status": "queued", "next": _token([1, 2])}, "next"),
        (
            {"status": "queued", "next": _token({"job_id": "tts-20261123-0123456789ab", "status": "queued"})},
            "next",
        ),
        (
            {
                "status": "queued",
                "next": encode_page_token(
                    {"job_id": "tts-20261123-0123456789ab", "status": "running", "created_at": 1}
                ),
            },
            "next",
        ),
        (
            {
                "status": "queued",
                "next": _token({"job_id": "../../x", "status": "queued", "created_at": 1}),
            },
            "next",
        ),
        (
            {
                "status": "queued",
                "next": _token(
                    {"job_id": "tts-20261123-0123456789ab", "status": "queued", "created_at": "x"}
                ),
            },
            "next",
        ),
        ({"status": "queued", "next": "x" * 3000}, "next"),
        ({"status": "bogus"}, "status"),
        ({"status": "queued", "limit": "0"}, "limit"),
        ({"status": "queued", "limit": "101"}, "limit"),
        ({"status": "queued", "limit": "ten"}, "limit"),
    ],
    ids=[
        "garbage-token",
        "token-not-an-object",
        "token-missing-sort-key",
        "token-of-another-status",
        "token-with-bad-job-id",
        "token-with-bad-sort-key",
        "token-too-long",
        "unknown-status",
        "limit-0",
        "limit-101",
        "limit-not-a-number",
    ],
)
def test_bad_list_parameters_are_400(
    call_api: Call, stack: dict[str, Any], params: dict[str, str], field: str
) -> None:
    # Given a list request with one bad parameter  When handled  Then 400 naming it
    refused(call_api(with_query(load_event("api_list_jobs"), **params)), 400, field)


# ---------------------------------------------------------------- routing
def test_unknown_route_is_404_json(call_api: Call, stack: dict[str, Any]) -> None:
    # Given a path the API does not have  When handled  Then a JSON 404
    event = load_event("api_health")
    event["path"] = event["resource"] = "/nope"
    result = call_api(event)
    assert result.status == 404
    assert "/nope" in result.body["message"]
