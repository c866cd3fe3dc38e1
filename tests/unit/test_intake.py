"""The SQS intake (storyflow.intake, functions/intake): the seed message raw or SNS-wrapped becomes one job
and one execution however often it comes; bad messages are recorded or dead-lettered, never retried
forever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from storyflow import aws, keys
from storyflow.jobstore import JobStore
from storyflow.models import JobStatus
from tests.support.functions import FakeContext, load_handler

SEED = {"parent_id": "parent-1", "task_id": "task-1", "prompt": "a lighthouse at dusk", "num_videos": 2}
JOB = keys.derived_job_id("video", "parent-1", "task-1")
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def intake(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Given the video intake's environment: a video state machine and a dead-letter queue."""
    machine = aws.client("stepfunctions").create_state_machine(
        name="storyflow-video", definition=PASS, roleArn="arn:aws:iam::123456789012:role/states"
    )["stateMachineArn"]
    dlq = boto3.client("sqs").create_queue(QueueName="video-dlq")["QueueUrl"]
    monkeypatch.setenv("VIDEO_STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("JOB_KIND", "video")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq)
    yield {"machine": machine, "dlq": dlq}
    for name in ("VIDEO_STATE_MACHINE_ARN", "JOB_KIND", "DEAD_LETTER_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)


def sns_wrapped(message: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "0d2c4a5e-1111-2222-3333-444455556666",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:video",
            "Message": json.dumps(message),
            "Timestamp": "2026-12-01T00:00:00.000Z",
        }
    )


def batch(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:video",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("intake")(event, FakeContext(function_name="storyflow-intake"))
    return answer


def executions(machine: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = aws.client("stepfunctions").list_executions(stateMachineArn=machine)[
        "executions"
    ]
    return found


@pytest.mark.parametrize("wrap", [json.dumps, sns_wrapped], ids=["raw", "sns-wrapped"])
def test_a_seed_message_becomes_one_queued_job_and_one_execution(
    stack: dict[str, Any], intake: dict[str, str], wrap: Any
) -> None:
    # When the seed message arrives (raw or as SNS delivers it)
    answer = handle(batch(wrap(SEED)))

    # Then the batch succeeded, the job (id from parent_id + task_id) holds the request with the defaults
    assert answer == {"batchItemFailures": []}
    job = JobStore(stack["JOBS_TABLE"]).get(JOB)
    assert job.status is JobStatus.QUEUED
    assert job.request["num_videos"] == 2 and job.request["steps"] == 15 and job.request["width"] == 1280
    # And one execution named by the job id got where the clips go
    (execution,) = executions(intake["machine"])
    assert execution["name"] == JOB
    payload = json.loads(
        aws.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert payload["output_prefix"] == "videos/parent-1/task-1/"


def test_a_redelivered_or_duplicated_message_starts_nothing_new(
    stack: dict[str, Any], intake: dict[str, str]
) -> None:
    # When the same task arrives raw, then SNS-wrapped, then twice in one batch
    handle(batch(json.dumps(SEED)))
    answer = handle(batch(sns_wrapped(SEED), json.dumps(SEED)))

    # Then every message is consumed and there is still one job and one execution
    assert answer == {"batchItemFailures": []}
    assert len(aws.table(stack["JOBS_TABLE"]).scan()["Items"]) == 1
    assert len(executions(intake["machine"])) == 1


def test_an_invalid_message_with_ids_is_recorded_as_a_failed_job_not_retried(
    stack: dict[str, Any], intake: dict[str, str]
) -> None:
    # When a message with valid ids but num_videos 3 and a width that is no multiple of 16 arrives
    answer = handle(batch(json.dumps({**SEED, "num_videos": 3, "width": 1000})))

    # Then it is consumed (not retried), and its job failed InvalidRequest naming both fields
    assert answer == {"batchItemFailures": []}
    job = JobStore(stack["JOBS_TABLE"]).get(JOB)
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.error == "InvalidRequest"
    assert "num_videos" in job.error.cause and "multiple of 16" in job.error.cause
    assert executions(intake["machine"]) == []


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps([1, 2]), json.dumps({"prompt": "no ids"}), sns_wrapped({"task_id": "../x"})],
)
def test_a_message_naming_no_job_goes_to_the_dead_letter_queue_with_its_reason(
    stack: dict[str, Any], intake: dict[str, str], body: str
) -> None:
    answer = handle(batch(body))
    assert answer == {"batchItemFailures": []}
    (message,) = boto3.client("sqs").receive_message(QueueUrl=intake["dlq"], MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert message["Body"] == body
    assert message["MessageAttributes"]["storyflow-error"]["StringValue"]
    assert aws.table(stack["JOBS_TABLE"]).scan()["Items"] == []


def test_a_transient_failure_fails_only_that_message(
    stack: dict[str, Any], intake: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given StartExecution that fails for the second task only
    from botocore.exceptions import ClientError

    from storyflow import workflows

    real = workflows.start

    def flaky(workflow: Any, job_id: str, payload: dict[str, Any], settings: Any) -> Any:
        if payload["request"]["task_id"] == "task-2":
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "StartExecution"
            )
        return real(workflow, job_id, payload, settings)

    monkeypatch.setattr(workflows, "start", flaky)

    # When both arrive in one batch
    answer = handle(batch(json.dumps(SEED), json.dumps({**SEED, "task_id": "task-2"})))

    # Then only the second comes back (partial batch failure); its job stays queued for the retry
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    monkeypatch.setattr(workflows, "start", real)
    assert handle(batch(json.dumps({**SEED, "task_id": "task-2"}))) == {"batchItemFailures": []}
    assert len(executions(intake["machine"])) == 2
