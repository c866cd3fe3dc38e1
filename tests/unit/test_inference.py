"""Generic async inference (submit_inference + inference_result) on moto tables built from template.yaml.

A stereo segment and a tts narration are both work items: the same two functions serve them.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from storyflow import aws, inference
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from storyflow.settings import Settings
from tests.support.functions import FakeContext, load_event, load_handler

JOB_ID = "stereo-20261123-0123456789ab"
TTS_JOB = "tts-20261123-0123456789ab"


class Recorder:
    """Stands in for Step Functions / the SageMaker runtime: records each call, and can run a side effect
    at call time (to observe what the caller had written by then)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.on_call: Any = None

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            if self.on_call is not None:
                self.on_call(name, kwargs)
            return {"InferenceId": kwargs.get("InferenceId"), "OutputLocation": "s3://x/y"}

        return call


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, stack: dict[str, Any]) -> dict[str, Recorder]:
    """Given Step Functions and the SageMaker runtime recorded instead of called."""
    recorders = {"stepfunctions": Recorder(), "sagemaker-runtime": Recorder()}
    real = aws.client

    def client(service: str) -> Any:
        return recorders[service] if service in recorders else real(service)

    monkeypatch.setattr(aws, "client", client)
    return recorders


def segment_item(index: int = 1, **overrides: Any) -> dict[str, Any]:
    item = {
        "task_token": f"token-{index}",
        "job_id": JOB_ID,
        "item_index": index,
        "endpoint": "storyflow-stereo",
        "input_uri": f"s3://storyflow-input/segments/{JOB_ID}/{index:05d}.mp4",
        "output_uri": f"s3://storyflow-output/jobs/{JOB_ID}/segments/{index:05d}.mp4",
        "params": {"layout": "half"},
    }
    return item | overrides


def submit(item: dict[str, Any]) -> str:
    inference_id: str = load_handler("submit_inference")(item, FakeContext())["inference_id"]
    return inference_id


def callback_row(inference_id: str) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb").Table("InferenceCallbacksTable")
    row: dict[str, Any] | None = table.get_item(Key={"inference_id": inference_id}).get("Item")
    return row


def notification(name: str, inference_id: str) -> dict[str, Any]:
    event = load_event(name)
    record = event["Records"][0]["Sns"]
    record["Message"] = record["Message"].replace("INFERENCE_ID", inference_id)
    return event


def answers(recorder: Recorder) -> list[tuple[str, dict[str, Any]]]:
    return [(name, kwargs) for name, kwargs in recorder.calls if name.startswith("send_task")]


@pytest.fixture
def jobs(stack: dict[str, Any]) -> JobStore:
    """Given the stereo and tts jobs the work items belong to, running."""
    store = JobStore("JobsTable")
    for kind, job_id in ((JobKind.STEREO, JOB_ID), (JobKind.TTS, TTS_JOB)):
        store.create(kind, job_id, {})
        store.transition(job_id, JobStatus.RUNNING)
    return store


@pytest.mark.usefixtures("jobs")
class TestSubmit:
    def test_the_token_is_in_the_table_when_the_endpoint_is_invoked(self, fakes: dict[str, Recorder]) -> None:
        # Given an endpoint that looks up the callback row at the moment it is invoked
        seen: list[dict[str, Any] | None] = []
        fakes["sagemaker-runtime"].on_call = lambda name, kw: seen.append(callback_row(kw["InferenceId"]))
        # When a segment is submitted
        inference_id = submit(segment_item())
        # Then the row (token, job, item) was already stored when InvokeEndpointAsync ran
        assert len(seen) == 1 and seen[0] is not None
        assert seen[0]["task_token"] == "token-1" and seen[0]["inference_id"] == inference_id
        assert int(seen[0]["item_index"]) == 1 and seen[0]["job_id"] == JOB_ID

    def test_the_request_points_at_s3_and_goes_to_the_items_endpoint(
        self, fakes: dict[str, Recorder]
    ) -> None:
        inference_id = submit(segment_item())
        [(name, call)] = fakes["sagemaker-runtime"].calls
        assert name == "invoke_endpoint_async" and call["InferenceId"] == inference_id
        assert call["EndpointName"] == "storyflow-stereo"
        bucket, key = call["InputLocation"][5:].split("/", 1)
        body = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        assert body == {
            "input_uri": f"s3://storyflow-input/segments/{JOB_ID}/00001.mp4",
            "output_uri": f"s3://storyflow-output/jobs/{JOB_ID}/segments/00001.mp4",
            "params": {"layout": "half"},
        }

    def test_a_narration_is_one_more_work_item_on_another_endpoint(self, fakes: dict[str, Recorder]) -> None:
        # Given a tts job's single item
        item = segment_item(
            0,
            job_id=TTS_JOB,
            endpoint="storyflow-tts",
            input_uri=f"s3://storyflow-output/tts/{TTS_JOB}/request.json",
            output_uri=f"s3://storyflow-output/tts/{TTS_JOB}/narration",
            params={"voice": "af_heart"},
        )
        # When it is submitted
        inference_id = submit(item)
        # Then it went to its own endpoint with its own locations, and its token is stored the same way
        [(_, call)] = fakes["sagemaker-runtime"].calls
        assert call["EndpointName"] == "storyflow-tts"
        row = callback_row(inference_id)
        assert row is not None and row["output_uri"] == item["output_uri"] and row["job_id"] == TTS_JOB

    @pytest.mark.parametrize(
        "bad",
        [
            {"endpoint": ""},
            {"endpoint": "bad name"},
            {"input_uri": "/etc/passwd"},
            {"output_uri": "s3://"},
            {"item_index": -1},
            {"job_id": "../x"},
        ],
    )
    def test_a_malformed_item_is_refused_before_anything_is_written(
        self, fakes: dict[str, Recorder], bad: dict[str, Any]
    ) -> None:
        with pytest.raises(Exception, match="validation error"):
            submit(segment_item() | bad)
        assert fakes["sagemaker-runtime"].calls == []
        assert boto3.client("dynamodb").scan(TableName="InferenceCallbacksTable")["Count"] == 0

    def test_a_throttled_endpoint_frees_the_row_and_asks_for_a_retry(
        self, fakes: dict[str, Recorder]
    ) -> None:
        def throttle(name: str, kwargs: dict[str, Any]) -> None:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, name)

        fakes["sagemaker-runtime"].on_call = throttle
        with pytest.raises(inference.TransientError, match="busy"):
            submit(segment_item())
        assert boto3.client("dynamodb").scan(TableName="InferenceCallbacksTable")["Count"] == 0


@pytest.mark.usefixtures("jobs")
class TestResult:
    def test_success_answers_the_token_once_and_counts_progress_once(
        self, fakes: dict[str, Recorder]
    ) -> None:
        # Given a running job and a submitted segment
        inference_id = submit(segment_item())
        handler = load_handler("inference_result")
        # When the success notification is delivered twice (SNS is at-least-once)
        handler(notification("sagemaker_async_success.json", inference_id), FakeContext())
        handler(notification("sagemaker_async_success.json", inference_id), FakeContext())
        # Then the token got one success naming the item, the item is recorded, progress counted once
        [(name, call)] = answers(fakes["stepfunctions"])
        assert name == "send_task_success" and call["taskToken"] == "token-1"
        output = json.loads(call["output"])
        assert output["item_index"] == 1 and output["output_uri"].endswith("/segments/00001.mp4")
        assert JobStore("JobsTable").get(JOB_ID).progress.done == 1
        row = (
            boto3.resource("dynamodb")
            .Table("SegmentCompletionsTable")
            .get_item(Key={"job_id": JOB_ID, "segment_index": 1})["Item"]
        )
        assert row["status"] == "succeeded"
        assert callback_row(inference_id) is None

    def test_failure_answers_with_the_containers_error_and_records_it(
        self, fakes: dict[str, Recorder]
    ) -> None:
        inference_id = submit(segment_item(2))
        load_handler("inference_result")(
            notification("sagemaker_async_failure.json", inference_id), FakeContext()
        )
        [(name, call)] = answers(fakes["stepfunctions"])
        # (the container answered 500: a transient failure, which the state machine retries)
        assert name == "send_task_failure" and call["error"] == inference.TRANSIENT_FAILURE
        assert call["cause"].startswith("item 00002: InjectedFault: fault injected")
        failed = inference.first_failed_item(JOB_ID, Settings.from_env())
        assert failed is not None and failed["error"] == "InjectedFault" and int(failed["segment_index"]) == 2

    def test_a_notification_nobody_waits_for_is_ignored(self, fakes: dict[str, Recorder]) -> None:
        load_handler("inference_result")(
            notification("sagemaker_async_success.json", "unknown-inference"), FakeContext()
        )
        assert answers(fakes["stepfunctions"]) == []


def failed_notification(inference_id: str, reason: str) -> dict[str, Any]:
    event = notification("sagemaker_async_failure.json", inference_id)
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    event["Records"][0]["Sns"]["Message"] = json.dumps(message | {"failureReason": reason})
    return event


def tags(bucket: str, key: str) -> dict[str, str]:
    tag_set = boto3.client("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def model_said(status: int, error: str) -> str:
    """A failureReason as SageMaker (and the local cloud) write it for an answer of the model container."""
    kind = "client" if status < 500 else "server"
    body = json.dumps({"error": error, "cause": "because"})
    return f'ClientError: Received {kind} error ({status}) from model with message "{body}". See the logs.'


class TestFailureClass:
    @pytest.mark.parametrize(
        ("reason", "expected"),
        [
            (model_said(400, "InvalidParams"), inference.CLIENT_FAILURE),
            (model_said(400, "InvalidRequest"), inference.CLIENT_FAILURE),
            (model_said(422, "NotAVideo"), inference.CLIENT_FAILURE),
            (model_said(404, "InputNotFound"), inference.CLIENT_FAILURE),
            (model_said(500, "InjectedFault"), inference.TRANSIENT_FAILURE),
            (model_said(503, "EngineNotReady"), inference.TRANSIENT_FAILURE),
            (model_said(429, "ThrottlingException"), inference.TRANSIENT_FAILURE),
            ("ModelError: <urlopen error [Errno 104] Connection reset by peer>", inference.TRANSIENT_FAILURE),
            ("ModelNotReadyException: the model is loading", inference.TRANSIENT_FAILURE),
            ('{"error": "UnprocessableInput", "cause": "empty text"}', inference.CLIENT_FAILURE),
            ("", inference.TRANSIENT_FAILURE),
        ],
    )
    def test_deterministic_model_errors_are_client_failures_and_the_rest_transient(
        self, reason: str, expected: str
    ) -> None:
        detail = inference.AsyncNotification.model_validate(
            {"inferenceId": "x", "invocationStatus": "Failed", "failureReason": reason}
        )
        error, _ = inference._failure_detail(detail)
        assert inference.failure_class(error, reason) == expected

    @pytest.mark.usefixtures("jobs")
    def test_a_client_failure_answers_the_token_with_the_class_the_state_machine_does_not_retry(
        self, fakes: dict[str, Recorder]
    ) -> None:
        # Given a submitted segment the model refuses (not a video: 422)
        inference_id = submit(segment_item(3))
        # When the failure notification arrives
        load_handler("inference_result")(
            failed_notification(inference_id, model_said(422, "NotAVideo")), FakeContext()
        )
        # Then the token fails InferenceFailed.Client; the item keeps the container's error (the job's error)
        [(name, call)] = answers(fakes["stepfunctions"])
        assert (name, call["error"]) == ("send_task_failure", inference.CLIENT_FAILURE)
        assert call["cause"].startswith("item 00003: NotAVideo: because")
        failed = inference.first_failed_item(JOB_ID, Settings.from_env())
        assert failed is not None and (failed["error"], failed["cause"]) == ("NotAVideo", "because")


class TestCancelledJob:
    def test_an_item_of_a_cancelled_job_is_refused_before_anything_is_invoked(
        self, fakes: dict[str, Recorder], jobs: JobStore
    ) -> None:
        # Given a job that was cancelled
        jobs.transition(JOB_ID, JobStatus.CANCELLED)
        # When the state machine still sends one of its work items
        with pytest.raises(Exception, match="no longer queued or running") as raised:
            submit(segment_item(4))
        # Then it is refused with a typed error, and nothing was invoked, stored or written
        assert type(raised.value).__name__ == "JobNotActive"
        assert fakes["sagemaker-runtime"].calls == []
        assert boto3.client("dynamodb").scan(TableName="InferenceCallbacksTable")["Count"] == 0
        assert boto3.client("s3").list_objects_v2(Bucket="storyflow-output").get("KeyCount") == 0

    def test_an_item_of_an_unknown_job_is_refused(self, fakes: dict[str, Recorder], jobs: JobStore) -> None:
        with pytest.raises(Exception, match="no longer queued or running"):
            submit(segment_item(0, job_id="stereo-20261123-ffffffffffff"))
        assert fakes["sagemaker-runtime"].calls == []

    def test_a_result_after_cancel_counts_nothing_and_tags_its_late_output(
        self, fakes: dict[str, Recorder], jobs: JobStore
    ) -> None:
        # Given a submitted segment whose job is cancelled while it runs, and its output written late
        inference_id = submit(segment_item(1))
        jobs.transition(JOB_ID, JobStatus.CANCELLED)
        s3 = boto3.client("s3")
        s3.put_object(Bucket="storyflow-output", Key=f"jobs/{JOB_ID}/segments/00001.mp4", Body=b"late")

        # ... and Step Functions refusing the token (its execution was aborted)
        def aborted(name: str, kwargs: dict[str, Any]) -> None:
            error = {"Error": {"Code": "TaskTimedOut", "Message": "Provided task does not exist anymore"}}
            raise ClientError(error, name)

        fakes["stepfunctions"].on_call = aborted
        # When its success notification arrives
        load_handler("inference_result")(
            notification("sagemaker_async_success.json", inference_id), FakeContext()
        )
        # Then progress did not move, no completion was recorded, the waiting row is gone
        assert jobs.get(JOB_ID).progress.done == 0
        assert boto3.client("dynamodb").scan(TableName="SegmentCompletionsTable")["Count"] == 0
        assert callback_row(inference_id) is None
        # ... the refused answer was tolerated, and the late output is tagged to expire
        assert [name for name, _ in answers(fakes["stepfunctions"])] == ["send_task_success"]
        assert tags("storyflow-output", f"jobs/{JOB_ID}/segments/00001.mp4") == {
            "storyflow-lifecycle": "expire-intermediate"
        }

    def test_a_failure_after_cancel_records_nothing(self, fakes: dict[str, Recorder], jobs: JobStore) -> None:
        inference_id = submit(segment_item(2))
        jobs.transition(JOB_ID, JobStatus.CANCELLED)
        load_handler("inference_result")(
            notification("sagemaker_async_failure.json", inference_id), FakeContext()
        )
        assert inference.first_failed_item(JOB_ID, Settings.from_env()) is None
        assert callback_row(inference_id) is None

    def test_progress_is_not_counted_once_the_job_is_cancelled(self, jobs: JobStore) -> None:
        # Given a running job that counted one item, then was cancelled
        assert jobs.add_progress(JOB_ID, only_active=True) is True
        jobs.transition(JOB_ID, JobStatus.CANCELLED)
        # When another item would count  Then it does not
        assert jobs.add_progress(JOB_ID, only_active=True) is False
        assert jobs.get(JOB_ID).progress.done == 1
