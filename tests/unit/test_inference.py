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
from storyflow.models import JobKind
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


class TestResult:
    def test_success_answers_the_token_once_and_counts_progress_once(
        self, fakes: dict[str, Recorder]
    ) -> None:
        # Given a queued job and a submitted segment
        JobStore("JobsTable").create(JobKind.STEREO, JOB_ID, {})
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
        JobStore("JobsTable").create(JobKind.STEREO, JOB_ID, {})
        inference_id = submit(segment_item(2))
        load_handler("inference_result")(
            notification("sagemaker_async_failure.json", inference_id), FakeContext()
        )
        [(name, call)] = answers(fakes["stepfunctions"])
        assert name == "send_task_failure" and call["error"] == inference.FAILURE_ERROR
        assert call["cause"].startswith("item 00002: InjectedFault: fault injected")
        failed = inference.first_failed_item(JOB_ID, Settings.from_env())
        assert failed is not None and failed["error"] == "InjectedFault" and int(failed["segment_index"]) == 2

    def test_a_notification_nobody_waits_for_is_ignored(self, fakes: dict[str, Recorder]) -> None:
        load_handler("inference_result")(
            notification("sagemaker_async_success.json", "unknown-inference"), FakeContext()
        )
        assert answers(fakes["stepfunctions"]) == []
