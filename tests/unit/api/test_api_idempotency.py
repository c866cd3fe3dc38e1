"""POST /jobs with an Idempotency-Key header: a client may retry a submission without making a second job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.api.conftest import ApiResult, executions, jobs_in_table, load_event, with_body

Call = Callable[[dict[str, Any]], ApiResult]
KEY = "retry-7f3a9c2e"
VIDEO = {"kind": "video", "parent_id": "parent-1", "task_id": "task-1", "prompt": "a lighthouse at dusk"}
# A kind whose job ids are fresh per submission (a video's derive from parent_id/task_id: the same body is
# always the same job, whatever the key), for the tests of what keys alone decide.
STORY = {"kind": "story", "prompt": "a lighthouse at dusk"}


def submission(
    body: dict[str, Any] | None = None, key: str | None = KEY, event: str = "api_submit_video"
) -> dict[str, Any]:
    request = load_event(event)
    if body is not None:
        request = with_body(request, body)
    if key is not None:
        request["headers"]["idempotency-key"] = key  # any case: API Gateway passes clients' headers as sent
        request["multiValueHeaders"]["idempotency-key"] = [key]
    return request


def test_a_retried_submission_answers_the_same_job_and_runs_once(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a video job submitted with an Idempotency-Key
    first = call_api(submission(VIDEO))
    assert first.status == 202, first.body

    # When the client retries the same request with the same key (e.g. after a timeout)
    again = call_api(submission(VIDEO))

    # Then it gets the first answer, and there is still one job and one execution
    assert again.status == 202, again.body
    assert again.body == first.body
    assert [item["job_id"] for item in jobs_in_table(stack)] == [first.body["job_id"]]
    assert len(executions()) == 1


def test_a_retried_stereo_submission_gets_the_same_upload_ticket(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    first = call_api(submission(event="api_submit_stereo"))
    again = call_api(submission(event="api_submit_stereo"))
    assert first.status == again.status == 202, (first.body, again.body)
    assert again.body["upload"] == first.body["upload"] and again.body["job_id"] == first.body["job_id"]
    assert len(jobs_in_table(stack)) == 1


def test_a_key_reused_with_another_request_is_a_409_and_writes_nothing(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a submission made with a key
    first = call_api(submission(VIDEO))
    assert first.status == 202, first.body

    # When the same key comes with a different request
    other = call_api(submission({**VIDEO, "prompt": "a different film"}))

    # Then 409 naming the header, and no second job or execution
    assert other.status == 409, other.body
    assert other.body["field"] == "Idempotency-Key" and "different request" in other.body["message"]
    assert len(jobs_in_table(stack)) == 1 and len(executions()) == 1


def test_different_keys_or_no_key_make_different_jobs(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    answers = [
        call_api(submission(STORY, key="first-key-0001")),
        call_api(submission(STORY, key="second-key-002")),
        call_api(submission(STORY, key=None)),
        call_api(submission(STORY, key=None)),
    ]
    assert [a.status for a in answers] == [202] * 4
    assert len({a.body["job_id"] for a in answers}) == 4
    assert len(jobs_in_table(stack)) == 4


def test_the_same_key_from_another_caller_is_another_submission(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a submission made with a key by one IAM principal
    first = call_api(submission(STORY))
    # When another principal happens to send the same key and body
    other = submission(STORY)
    other["requestContext"]["identity"]["userArn"] = "arn:aws:sts::123456789012:assumed-role/ci/other"
    second = call_api(other)
    # Then it gets a job of its own, never the first caller's
    assert first.status == second.status == 202, (first.body, second.body)
    assert second.body["job_id"] != first.body["job_id"]
    assert len(jobs_in_table(stack)) == 2


@pytest.mark.parametrize("key", ["short", "has space in it", "x" * 129, "semi;colon-key"])
def test_a_malformed_key_is_a_400_naming_the_header_and_writes_nothing(
    call_api: Call, state_machines: dict[str, str], assert_nothing_written: Callable[[], None], key: str
) -> None:
    result = call_api(submission(VIDEO, key=key))
    assert result.status == 400, result.body
    assert "idempotency-key" in result.body["message"].lower()
    assert_nothing_written()


def test_a_submission_that_failed_is_really_submitted_again_on_retry(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a submission that failed to start its workflow (503: the job is marked failed)
    machine = state_machines["story"]
    monkeypatch.setenv("STORY_STATE_MACHINE_ARN", machine + "-gone")
    failed = call_api(submission(STORY))
    assert failed.status == 503, failed.body

    # When the client retries with the same key once the workflow can start
    monkeypatch.setenv("STORY_STATE_MACHINE_ARN", machine)
    retried = call_api(submission(STORY))

    # Then the retry made a new job that runs (a failure is not replayed)
    assert retried.status == 202, retried.body
    statuses = {item["job_id"]: item["status"] for item in jobs_in_table(stack)}
    assert statuses[retried.body["job_id"]] == "queued" and sorted(statuses.values()) == ["failed", "queued"]
    assert [e["name"] for e in executions()] == [retried.body["job_id"]]
