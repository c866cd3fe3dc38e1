"""on_upload and job_status, on moto tables built from template.yaml."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from storyflow import aws
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from storyflow.registry import sniff_video
from tests.support.functions import FakeContext, load_event, load_handler

JOB_ID = "stereo-20261123-0123456789ab"
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


class Recorder:
    """Stands in for the Step Functions / SageMaker runtime clients and records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {
                "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:m:{kwargs.get('name')}",
                "InferenceId": kwargs.get("InferenceId"),
                "OutputLocation": "s3://x/y",
            }

        return call


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, stack: dict[str, Any]) -> dict[str, Recorder]:
    """Given Step Functions and the SageMaker runtime recorded instead of called."""
    recorders = {"stepfunctions": Recorder(), "sagemaker-runtime": Recorder()}
    real = aws.client

    def client(service: str) -> Any:
        return recorders[service] if service in recorders else real(service)

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setenv(
        "STEREO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:stereo"
    )
    return recorders


def upload_event(key: str, size: int = 1024) -> dict[str, Any]:
    event = load_event("s3_object_created.json")
    event["detail"]["object"].update(key=key, size=size)
    return event


def put_source(body: bytes, job_id: str = JOB_ID) -> None:
    boto3.client("s3").put_object(Bucket="storyflow-input", Key=f"input/{job_id}/source.mp4", Body=body)


class TestOnUpload:
    handler = staticmethod(load_handler("on_upload"))

    def test_direct_upload_creates_the_job_and_starts_one_named_execution(
        self, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Given a (moto) stereo state machine and an MP4 uploaded straight to S3 (no POST /jobs)
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="stereo",
            roleArn="arn:aws:iam::123456789012:role/sfn",
            definition=json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}
            ),
        )["stateMachineArn"]
        monkeypatch.setenv("STEREO_STATE_MACHINE_ARN", machine)
        put_source(MP4_HEAD + b"\x00" * 1000)
        # When the Object Created event arrives twice (S3/EventBridge deliver at least once)
        self.handler(upload_event(f"input/{JOB_ID}/source.mp4"), FakeContext())
        self.handler(upload_event(f"input/{JOB_ID}/source.mp4"), FakeContext())
        # Then the job exists and exactly one execution, named by the job id, was started
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert [e["name"] for e in executions] == [JOB_ID]
        payload = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
        assert payload["source"] == {"bucket": "storyflow-input", "key": f"input/{JOB_ID}/source.mp4"}
        assert payload["params"]["layout"] == "full"
        assert JobStore("JobsTable").get(JOB_ID).kind is JobKind.STEREO

    @pytest.mark.parametrize(
        "key",
        [
            "input/stereo-20261123-0123456789ab/other.mp4",
            "input/../etc/source.mp4",
            "segments/x/00000.mp4",
            "input/UPPER-case-id/source.mp4",
            "input/a/b/source.mp4",
        ],
    )
    def test_keys_outside_the_upload_shape_are_ignored(self, fakes: dict[str, Recorder], key: str) -> None:
        # When an event arrives for any other key
        result = self.handler(upload_event(key), FakeContext())
        # Then nothing is created or started
        assert result == {"job_id": None}
        assert fakes["stepfunctions"].calls == []
        assert boto3.client("dynamodb").scan(TableName="JobsTable")["Count"] == 0

    def test_url_encoded_key_is_decoded_before_matching(self, fakes: dict[str, Recorder]) -> None:
        put_source(MP4_HEAD)
        result = self.handler(upload_event(f"input%2F{JOB_ID}%2Fsource.mp4"), FakeContext())
        assert result == {"job_id": JOB_ID}

    @pytest.mark.parametrize(
        ("body", "cause"), [(b"", "empty upload (0 bytes)"), (b"hello, not a video", "not a video")]
    )
    def test_non_video_upload_fails_the_job_without_starting_work(
        self, fakes: dict[str, Recorder], body: bytes, cause: str
    ) -> None:
        # Given a zero-length or text file uploaded as source.mp4
        put_source(body)
        # When its event arrives
        self.handler(upload_event(f"input/{JOB_ID}/source.mp4", size=len(body)), FakeContext())
        # Then the job failed with a clear cause and no execution was started
        job = JobStore("JobsTable").get(JOB_ID)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and job.error.error == "NotAVideo" and cause in job.error.cause
        assert fakes["stepfunctions"].calls == []


def test_sniff_accepts_mp4_quicktime_and_matroska_headers() -> None:
    assert sniff_video(MP4_HEAD, 100) is None
    assert sniff_video(b"\x00\x00\x00\x08wide\x00\x00", 100) is None
    assert sniff_video(b"\x1a\x45\xdf\xa3\x00\x00", 100) is None
    assert sniff_video(b"GIF89a", 100) is not None


class TestJobStatus:
    handler = staticmethod(load_handler("job_status"))

    def running_job(self) -> None:
        store = JobStore("JobsTable")
        store.create(JobKind.STEREO, JOB_ID, {})
        store.transition(JOB_ID, JobStatus.RUNNING)

    def test_completed_sets_outputs_and_completed_at(self, stack: dict[str, Any]) -> None:
        self.running_job()
        self.handler(
            {"job_id": JOB_ID, "status": "completed", "outputs": {"final.mp4": "s3://o/jobs/x/final.mp4"}},
            FakeContext(),
        )
        job = JobStore("JobsTable").get(JOB_ID)
        assert job.status is JobStatus.COMPLETED and job.completed_at and job.outputs["final.mp4"]

    def test_lambda_failure_is_unwrapped(self, stack: dict[str, Any]) -> None:
        self.running_job()
        cause = {"errorType": "TransientError", "errorMessage": "endpoint busy"}
        self.handler(
            {
                "job_id": JOB_ID,
                "status": "failed",
                "failure": {"Error": "TransientError", "Cause": json.dumps(cause)},
            },
            FakeContext(),
        )
        error = JobStore("JobsTable").get(JOB_ID).error
        assert error is not None and (error.error, error.cause) == ("TransientError", "endpoint busy")

    def test_a_cancelled_job_stays_cancelled(self, stack: dict[str, Any]) -> None:
        self.running_job()
        JobStore("JobsTable").transition(JOB_ID, JobStatus.CANCELLED)
        result = self.handler({"job_id": JOB_ID, "status": "completed"}, FakeContext())
        assert result == {"status": None}
        assert JobStore("JobsTable").get(JOB_ID).status is JobStatus.CANCELLED
