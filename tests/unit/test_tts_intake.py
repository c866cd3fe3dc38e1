"""The TTS queue intake (functions/intake with JOB_KIND=tts): raw and SNS-wrapped messages become tts jobs
once each; bad messages become failed jobs or go to the dead-letter queue; a transient failure fails only
its own message (partial batch response)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storyflow import aws, keys
from storyflow.jobstore import JobStore
from storyflow.models import JobStatus
from tests.support.functions import FakeContext, load_handler

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
TEXT = "The keeper lit the lamp. Its beam swept the bay."


@pytest.fixture
def intake(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Given the tts state machine, the dead-letter queue and the intake function's environment."""
    machine = aws.client("stepfunctions").create_state_machine(
        name="storyflow-tts", definition=PASS, roleArn="arn:aws:iam::123456789012:role/states"
    )["stateMachineArn"]
    dead = aws.client("sqs").create_queue(QueueName="tts-dead-letters")["QueueUrl"]
    monkeypatch.setenv("TTS_STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("JOB_KIND", "tts")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "intake")
    return {"machine": machine, "dead": dead}


def record(body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tts",
        "awsRegion": "us-east-1",
    }


def sns_wrapped(message: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:tts",
            "Message": json.dumps(message),
            "Timestamp": "2026-12-01T00:00:00.000Z",
        }
    )


def deliver(*records: dict[str, Any]) -> dict[str, Any]:
    handler: Callable[..., dict[str, Any]] = load_handler("intake")
    return handler({"Records": list(records)}, FakeContext(function_name="storyflow-intake"))


def executions(machine: str) -> list[str]:
    return [
        e["name"] for e in aws.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    ]


def message(**fields: Any) -> dict[str, Any]:
    return {"parent_id": "story-1", "task_id": f"scene-{uuid.uuid4().hex[:6]}", "text": TEXT, **fields}


def test_raw_and_sns_wrapped_messages_start_one_job_each(
    intake: dict[str, str], stack: dict[str, Any]
) -> None:
    # Given one raw message and one SNS-wrapped message
    raw, wrapped = message(voice="bm_george"), message(speed=1.5)
    # When the intake takes the batch
    result = deliver(record(json.dumps(raw)), record(sns_wrapped(wrapped)))
    # Then nothing failed, and each became a queued tts job named by its ids, its execution started
    assert result == {"batchItemFailures": []}
    store = JobStore(stack["JOBS_TABLE"])
    for sent in (raw, wrapped):
        job_id = keys.derived_job_id("tts", sent["parent_id"], sent["task_id"])
        job = store.get(job_id)
        assert (job.kind, job.status) == ("tts", JobStatus.QUEUED)
        assert job.request["text"] == TEXT and job.request["task_id"] == sent["task_id"]
        assert executions(intake["machine"]).count(job_id) == 1
    assert store.get(keys.derived_job_id("tts", "story-1", raw["task_id"])).request["voice"] == "bm_george"


def test_a_duplicate_message_never_starts_a_second_execution(intake: dict[str, str]) -> None:
    # Given a message taken once
    sent = message()
    deliver(record(json.dumps(sent)))
    # When it arrives again, raw and through the topic
    result = deliver(record(json.dumps(sent)), record(sns_wrapped(sent)))
    # Then the duplicates succeed (deleted from the queue) and there is still one execution
    assert result == {"batchItemFailures": []}
    job_id = keys.derived_job_id("tts", sent["parent_id"], sent["task_id"])
    assert executions(intake["machine"]).count(job_id) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"voice": "zz_nobody"}, "voice"),
        ({"lang": "fr-fr"}, "lang"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 20001}, "text"),
        ({"speed": 9}, "speed"),
    ],
)
def test_an_invalid_message_with_ids_is_a_failed_job_naming_the_field(
    intake: dict[str, str], stack: dict[str, Any], fields: dict[str, Any], field: str
) -> None:
    sent = message(**fields)
    assert deliver(record(json.dumps(sent))) == {"batchItemFailures": []}  # never retried
    job = JobStore(stack["JOBS_TABLE"]).get(keys.derived_job_id("tts", sent["parent_id"], sent["task_id"]))
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.error == "InvalidRequest"
    assert field in job.error.cause
    assert executions(intake["machine"]) == []


def test_a_message_that_is_not_json_goes_to_the_dead_letter_queue_with_its_reason(
    intake: dict[str, str],
) -> None:
    assert deliver(record("this is not json")) == {"batchItemFailures": []}
    sqs = aws.client("sqs")
    got = sqs.receive_message(QueueUrl=intake["dead"], MessageAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["this is not json"]
    assert "not JSON" in got[0]["MessageAttributes"]["storyflow-error"]["StringValue"]


def test_a_transient_failure_fails_only_its_own_message(
    intake: dict[str, str], stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from storyflow import workflows

    # Given Step Functions throttling the start of one job
    unlucky, lucky = message(), message()
    unlucky_id = keys.derived_job_id("tts", unlucky["parent_id"], unlucky["task_id"])
    original = workflows.start

    def start(workflow: Any, job_id: str, payload: dict[str, Any], settings: Any) -> tuple[str, bool]:
        if job_id == unlucky_id:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution"
            )
        return original(workflow, job_id, payload, settings)

    monkeypatch.setattr(workflows, "start", start)
    # When both arrive in one batch
    result = deliver(record(json.dumps(unlucky), "m-unlucky"), record(json.dumps(lucky), "m-lucky"))
    # Then only the throttled message comes back (it is retried, then dead-lettered by the queue's redrive)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-unlucky"}]}
    lucky_id = keys.derived_job_id("tts", lucky["parent_id"], lucky["task_id"])
    assert executions(intake["machine"]) == [lucky_id]
    # ... and its redelivery, once Step Functions answers, starts the job it left queued
    monkeypatch.setattr(workflows, "start", original)
    assert deliver(record(json.dumps(unlucky), "m-unlucky")) == {"batchItemFailures": []}
    assert JobStore(stack["JOBS_TABLE"]).get(unlucky_id).status is JobStatus.QUEUED
    assert sorted(executions(intake["machine"])) == sorted([lucky_id, unlucky_id])
