"""The `storyflow` CLI against the real API handler served on 127.0.0.1, over moto (template tables)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
import requests
from botocore.credentials import Credentials
from botocore.stub import Stubber
from typer.testing import CliRunner

from storyflow import aws
from storyflow.jobstore import JobStore
from storyflow.keys import upload_key
from storyflow.models import JobError, JobKind, JobStatus, Progress, StoryScene
from storyflow.openapi import load_api_module
from storyflow_cli import client as cli
from storyflow_cli import commands
from storyflow_cli import target as cli_target
from tests.support.functions import FakeContext
from tests.support.jobs import set_progress_total
from tests.unit.api.boto_cache import shared_botocore_loader  # noqa: F401 (session fixture)
from tests.unit.api.conftest import load_event
from tests.unit.api.moto_stack import _module_account, module_lived_stack  # noqa: F401 (fixture `stack`)
from tests.unit.conftest import REGION

RUNNER = CliRunner()
JOB = "video-20261123-0123456789ab"
Hook = Callable[[str, str], None]


class ApiServer:
    """The API function behind a tiny HTTP server: each request becomes an API Gateway proxy event."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []  # run before each request (method, path): lets a test move a job along
        self.requests: list[tuple[str, str]] = []
        module = load_api_module()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.serve(self, module)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dev"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def serve(self, request: BaseHTTPRequestHandler, module: Any) -> None:
        url = urlsplit(request.path)
        path = url.path.removeprefix("/dev") or "/"
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length).decode() if length else None
        self.requests.append((request.command, path))
        for hook in self.hooks:
            hook(request.command, path)
        event = load_event("api_get_job")  # a stored event, re-aimed at this request
        query = dict(parse_qsl(url.query))
        event.update(
            resource=path,
            path=path,
            httpMethod=request.command,
            headers=dict(request.headers.items()),
            multiValueHeaders={k: [v] for k, v in request.headers.items()},
            queryStringParameters=query or None,
            multiValueQueryStringParameters={k: [v] for k, v in query.items()} or None,
            pathParameters=None,
            body=body,
        )
        event["requestContext"].update(
            httpMethod=request.command, path=f"/dev{path}", requestId=str(uuid.uuid4())
        )
        response = module.handler(event, FakeContext(function_name="storyflow-api"))
        payload = (response.get("body") or "").encode()
        request.send_response(response["statusCode"])
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


@pytest.fixture
def api(stack: dict[str, Any]) -> Iterator[ApiServer]:
    """Given the API function served on 127.0.0.1 (inside the moto account)."""
    server = ApiServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def store(stack: dict[str, Any]) -> JobStore:
    return JobStore(stack["JOBS_TABLE"])


def state_machine(name: str, variable: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A one-state machine in the moto stack, its ARN in the API's environment variable `variable`."""
    arn: str = aws.client("stepfunctions").create_state_machine(
        name=name,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    monkeypatch.setenv(variable, arn)
    return arn


@pytest.fixture
def video_machine(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    return state_machine("storyflow-video", "VIDEO_STATE_MACHINE_ARN", monkeypatch)


def run(api: ApiServer, *args: str) -> Any:
    return RUNNER.invoke(commands.app, ["--api-url", api.url, *args], env={"COLUMNS": "200"})


# ---------------------------------------------------------------- status / list
def test_status_shows_the_job(api: ApiServer, store: JobStore) -> None:
    # Given a running job at 2 of 4 segments
    store.create(JobKind.VIDEO, JOB, {"kind": "video"})
    store.transition(JOB, JobStatus.RUNNING, stage="inferring")
    set_progress_total("JobsTable", JOB, 4)
    store.add_progress(JOB, 2)

    # When `storyflow status` is run
    result = run(api, "status", JOB)

    # Then it shows id, kind, status, stage and progress; exit 0
    assert result.exit_code == 0, result.output
    for text in (JOB, "video", "running", "inferring", "2/4"):
        assert text in result.output


def test_status_raw_is_the_job_json(api: ApiServer, store: JobStore) -> None:
    store.create(JobKind.VIDEO, JOB, {"kind": "video"})
    result = run(api, "status", JOB, "--raw")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["job_id"] == JOB  # stdout alone: stray log noise goes to stderr


def test_status_of_a_missing_job_fails(api: ApiServer) -> None:
    # Given no such job  When asked  Then exit 1 with the API's 404 reason
    result = run(api, "status", "video-20261123-ffffffffffff")
    assert result.exit_code == 1
    assert "404 [job_id]" in result.output and "not found" in result.output


@pytest.mark.parametrize("command", ["status", "watch", "get", "cancel"])
@pytest.mark.parametrize("job_id", ["../x", "NOT_AN_ID", "a/b-12345678"])
def test_malformed_job_ids_are_refused_before_any_request(api: ApiServer, command: str, job_id: str) -> None:
    # Given an id that is not a storyflow id  When any job command gets it  Then a usage error, no request
    result = run(api, command, job_id)
    assert result.exit_code == 2, result.output
    assert "not a storyflow job id" in result.output
    assert api.requests == []


def test_list_shows_newest_first_and_offers_the_next_page(
    api: ApiServer, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three queued jobs created a second apart
    ids = []
    for i in range(3):
        with monkeypatch.context() as patch:
            patch.setattr("time.time", lambda i=i: 1_800_000_000.0 + i)
            ids.append(store.create(JobKind.TTS, f"tts-20261123-00000000000{i}", {}).job_id)

    # When the first page of 2 is listed
    first = run(api, "list", "--status", "queued", "--limit", "2")

    # Then the two newest, in order, and the command for the next page
    assert first.exit_code == 0, first.output
    assert first.output.index(ids[2]) < first.output.index(ids[1])
    assert ids[0] not in first.output
    assert "--next" in first.output

    # When every page is followed  Then all three
    every = run(api, "list", "--status", "queued", "--limit", "2", "--all")
    assert all(job_id in every.output for job_id in ids)


def test_list_with_nothing_says_so(api: ApiServer) -> None:
    result = run(api, "list")
    assert result.exit_code == 0 and "no running jobs" in result.output


# ---------------------------------------------------------------- submit
def test_submit_video_with_options(api: ApiServer, store: JobStore, video_machine: str) -> None:
    # When a video job is submitted with a prompt and --set parameters (values parsed as JSON)
    result = run(
        api,
        "submit",
        "video",
        "--prompt",
        "a fox",
        "-s",
        "parent_id=p1",
        "-s",
        "task_id=t1",
        "-s",
        "num_videos=2",
    )

    # Then it is created with those parameters and its execution started
    assert result.exit_code == 0, result.output
    (page, _) = store.list(JobStatus.QUEUED)
    (job,) = page
    assert job.job_id in result.output
    assert job.request["num_videos"] == 2 and job.request["prompt"] == "a fox"
    assert aws.client("stepfunctions").list_executions(stateMachineArn=video_machine)["executions"]


def test_each_submission_carries_its_own_idempotency_key(
    api: ApiServer, store: JobStore, video_machine: str, stack: dict[str, Any]
) -> None:
    # When the same video request is submitted twice
    for _ in range(2):
        result = run(api, "submit", "video", "--prompt", "a fox", "-s", "parent_id=p1", "-s", "task_id=t1")
        assert result.exit_code == 0, result.output
    # Then each submission was recorded under its own key in the Idempotency table (the job is one: a video
    # job's id derives from parent_id + task_id, so the second submission answered the first job)
    (page, _) = store.list(JobStatus.QUEUED)
    assert len(page) == 1
    records = aws.table(stack["IDEMPOTENCY_TABLE"]).scan()["Items"]
    assert len(records) == 2 and {r["status"] for r in records} == {"COMPLETED"}


def test_submit_from_a_json_file(api: ApiServer, store: JobStore, video_machine: str, tmp_path: Path) -> None:
    request = tmp_path / "job.json"
    request.write_text(json.dumps({"parent_id": "p", "task_id": "t", "prompt": "waves", "steps": 20}))
    result = run(api, "submit", "video", "--json", str(request))
    assert result.exit_code == 0, result.output
    assert store.list(JobStatus.QUEUED)[0][0].request["steps"] == 20


def test_submit_refused_prints_the_field_and_writes_nothing(
    api: ApiServer, store: JobStore, video_machine: str
) -> None:
    # When a bad parameter is submitted  Then exit 1 naming the field, and no job exists
    result = run(
        api, "submit", "video", "--prompt", "x", "-s", "parent_id=p", "-s", "task_id=t", "-s", "num_videos=3"
    )
    assert result.exit_code == 1
    assert "num_videos" in result.output and "400" in result.output
    assert store.list(JobStatus.QUEUED) == ([], None)


def test_submit_stereo_uploads_the_file_through_the_presigned_post(
    api: ApiServer, store: JobStore, stack: dict[str, Any], tmp_path: Path
) -> None:
    # Given an .mp4 on disk
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 40)

    # When it is submitted as a stereo job
    result = run(api, "submit", "stereo", "--file", str(clip), "--set", "layout=half")

    # Then the job exists (limited to the file's size) and the object landed at its upload key
    assert result.exit_code == 0, result.output
    (job,) = store.list(JobStatus.QUEUED)[0]
    assert job.request["layout"] == "half" and job.request["max_upload_bytes"] == clip.stat().st_size
    stored = (
        aws.client("s3").get_object(Bucket=stack["INPUT_BUCKET"], Key=upload_key(job.job_id))["Body"].read()
    )
    assert stored == clip.read_bytes()


def test_submit_file_for_a_kind_without_upload_is_a_usage_error(api: ApiServer, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    result = run(api, "submit", "tts", "--text", "hi", "--file", str(clip))
    assert result.exit_code == 2 and "stereo" in result.output
    assert api.requests == []


def test_an_empty_file_is_refused_before_any_job_is_created(api: ApiServer, tmp_path: Path) -> None:
    # Given a zero-byte clip
    clip = tmp_path / "empty.mp4"
    clip.write_bytes(b"")
    # When it is submitted for stereo
    result = run(api, "submit", "stereo", "--file", str(clip))
    # Then the CLI refuses it as a usage error, and the API was never called (no job waits for it)
    assert result.exit_code == 2 and "empty" in result.output
    assert api.requests == []


# ---------------------------------------------------------------- watch
def _advance(store: JobStore, steps: list[Callable[[], None]]) -> Hook:
    """A hook that applies the next step before each GET of the job (one step per poll)."""

    def hook(method: str, path: str) -> None:
        if method == "GET" and path == f"/jobs/{JOB}" and steps:
            steps.pop(0)()

    return hook


def test_watch_follows_progress_until_completed(api: ApiServer, store: JobStore) -> None:
    # Given a queued job that will run 3 segments over the next polls
    store.create(JobKind.VIDEO, JOB, {})
    api.hooks.append(
        _advance(
            store,
            [
                lambda: None,
                lambda: (
                    store.transition(JOB, JobStatus.RUNNING, stage="inferring"),
                    set_progress_total("JobsTable", JOB, 3),
                ),
                lambda: store.add_progress(JOB, 2),
                lambda: (store.add_progress(JOB), store.transition(JOB, JobStatus.COMPLETED, stage="done")),
            ],
        )
    )

    # When it is watched
    result = run(api, "watch", JOB, "--interval", "0")

    # Then the watch ends on completed (3/3) with exit 0, after polling through every state
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "3/3" in result.output
    assert api.requests.count(("GET", f"/jobs/{JOB}")) == 4


@pytest.mark.parametrize("final", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_watch_exits_non_zero_when_the_job_does_not_complete(
    api: ApiServer, store: JobStore, final: JobStatus
) -> None:
    # Given a running job that then fails (with a reason) or is cancelled
    store.create(JobKind.VIDEO, JOB, {})
    store.transition(JOB, JobStatus.RUNNING)
    error = (
        JobError(error="States.TaskFailed", cause="GPU capacity unavailable")
        if final is JobStatus.FAILED
        else None
    )
    api.hooks.append(
        _advance(store, [lambda: None, lambda: store.transition(JOB, final, error=error) and None])
    )

    # When it is watched
    result = run(api, "watch", JOB, "--interval", "0")

    # Then exit 1, with the error and its cause when it failed
    assert result.exit_code == 1, result.output
    assert final.value in result.output
    if error:
        assert "States.TaskFailed" in result.output and "GPU capacity unavailable" in result.output


def test_watch_times_out(api: ApiServer, store: JobStore) -> None:
    store.create(JobKind.VIDEO, JOB, {})
    result = run(api, "watch", JOB, "--interval", "0.01", "--timeout", "0.05")
    assert result.exit_code == 3 and "still queued" in result.output


# ---------------------------------------------------------------- get / cancel
def test_get_downloads_every_output(
    api: ApiServer, store: JobStore, stack: dict[str, Any], tmp_path: Path
) -> None:
    # Given a completed job with two outputs in the output bucket
    s3 = aws.client("s3")
    bucket = stack["OUTPUT_BUCKET"]
    s3.put_object(Bucket=bucket, Key=f"jobs/{JOB}/final.mp4", Body=b"final")
    s3.put_object(
        Bucket=bucket, Key=f"tts/{JOB}/narration.srt", Body=b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"
    )
    store.create(JobKind.VIDEO, JOB, {})
    store.transition(JOB, JobStatus.RUNNING)
    outputs = {
        "final": f"s3://{bucket}/jobs/{JOB}/final.mp4",
        "../srt": f"s3://{bucket}/tts/{JOB}/narration.srt",
    }
    store.transition(JOB, JobStatus.COMPLETED, outputs=outputs)

    # When its outputs are fetched into a folder
    result = run(api, "get", JOB, "--dir", str(tmp_path / "out"))

    # Then each is saved under a safe name with its extension (no path escapes the folder)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "final.mp4").read_bytes() == b"final"
    assert (tmp_path / "out" / "_srt.srt").read_bytes().startswith(b"1\n")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["_srt.srt", "final.mp4"]


def test_get_before_completion_fails(api: ApiServer, store: JobStore, tmp_path: Path) -> None:
    store.create(JobKind.VIDEO, JOB, {})
    result = run(api, "get", JOB, "--dir", str(tmp_path))
    assert result.exit_code == 1 and "409" in result.output


def test_cancel_then_cancel_again(api: ApiServer, store: JobStore) -> None:
    # Given a queued job  When cancelled  Then it says cancelled
    store.create(JobKind.VIDEO, JOB, {})
    first = run(api, "cancel", JOB)
    assert first.exit_code == 0, first.output
    assert "cancelled" in first.output
    assert store.get(JOB).status is JobStatus.CANCELLED

    # When cancelled again  Then exit 1 with the 409 reason
    again = run(api, "cancel", JOB)
    assert again.exit_code == 1 and "409" in again.output


# ---------------------------------------------------------------- finding the API
def test_no_api_is_a_usage_error_with_the_ways_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORYFLOW_API_URL", raising=False)
    monkeypatch.delenv("STORYFLOW_STACK", raising=False)
    result = RUNNER.invoke(commands.app, ["status", JOB])
    assert result.exit_code == 2
    assert "--stack" in result.output and "storyflow local up" in result.output


def test_local_state_file_points_at_the_local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given .storyflow/local.json in a parent folder (written by the local cloud)
    state = {
        "endpoint_url": "http://127.0.0.1:45678",
        "api_url": "http://127.0.0.1:45679/local",
        "region": "eu-west-1",
        "outputs": {"InputBucketName": "in"},
    }
    (tmp_path / ".storyflow").mkdir()
    (tmp_path / ".storyflow" / "local.json").write_text(json.dumps(state))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "restored-after-the-test")  # resolve_target sets it for real

    # When no stack or URL is given
    target = cli.resolve_target(None, None, None)

    # Then the local API is used, unsigned, and boto3 is pointed at the emulator
    assert target.api_url == "http://127.0.0.1:45679/local" and not target.signed
    assert target.outputs == {"InputBucketName": "in"}
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:45678"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """CloudFormation answered by a botocore Stubber (requests are still checked against the API model)."""
    client = boto3.session.Session().client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    monkeypatch.setattr(cli_target, "_cloudformation", lambda region: client)
    stubber.activate()
    return stubber


def test_stack_outputs_give_the_api(
    cloudformation: Stubber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed stack whose outputs name the API and the buckets
    monkeypatch.chdir(tmp_path)
    url = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/dev"
    outputs = [
        {"OutputKey": "ApiUrl", "OutputValue": url},
        {"OutputKey": "InputBucketName", "OutputValue": "in"},
    ]
    cloudformation.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "storyflow-dev",
                    "CreationTime": "2026-11-23T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": outputs,
                }
            ]
        },
        {"StackName": "storyflow-dev"},
    )

    # When the CLI is given the stack name
    target = cli.resolve_target("storyflow-dev", None, REGION)

    # Then the API URL and buckets come from its outputs, and the API is signed in its own region
    assert target.api_url == url
    assert target.outputs["InputBucketName"] == "in"
    assert target.signed and target.signing_region == "eu-west-1"
    cloudformation.assert_no_pending_responses()


def _stack_with_outputs(cloudformation: Stubber, outputs: dict[str, str]) -> None:
    stack = {
        "StackName": "storyflow-dev",
        "CreationTime": "2026-11-23T00:00:00Z",
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
    }
    cloudformation.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "storyflow-dev"})


def test_an_id_token_selects_the_stacks_cognito_api_unsigned(
    cloudformation: Stubber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack deployed with a user pool: an IAM API and a Cognito API
    monkeypatch.chdir(tmp_path)
    users = "https://users1234.execute-api.eu-west-1.amazonaws.com/dev"
    _stack_with_outputs(
        cloudformation,
        {"ApiUrl": "https://iam12345.execute-api.eu-west-1.amazonaws.com/dev", "UserApiUrl": users},
    )

    # When the CLI is given an ID token
    target = cli.resolve_target("storyflow-dev", None, REGION, id_token="eyJ.id.token")

    # Then it talks to the Cognito API and does not sign with AWS credentials
    assert target.api_url == users and target.id_token == "eyJ.id.token" and not target.signed


def test_an_id_token_for_a_stack_without_a_user_pool_is_a_clear_error(
    cloudformation: Stubber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _stack_with_outputs(
        cloudformation, {"ApiUrl": "https://iam12345.execute-api.eu-west-1.amazonaws.com/dev"}
    )
    with pytest.raises(cli.CliError, match="UserPoolArn"):
        cli.resolve_target("storyflow-dev", None, REGION, id_token="eyJ.id.token")


def test_unknown_stack_is_a_clear_error(
    cloudformation: Stubber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cloudformation.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id storyflow-missing does not exist", 400
    )
    with pytest.raises(cli.CliError, match="storyflow-missing"):
        cli.resolve_target("storyflow-missing", None, REGION)


# ---------------------------------------------------------------- signing and uploads
class Capture(requests.adapters.BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"status": "ok"}'
        return response

    def close(self) -> None:
        pass


def test_requests_to_api_gateway_are_sigv4_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployed (execute-api) URL and credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    session = requests.Session()
    capture = Capture()
    session.mount("https://", capture)
    client = cli.ApiClient(cli.Target("https://abc123defg.execute-api.eu-west-1.amazonaws.com/dev"), session)

    # When a body is posted
    client.call("POST", "/jobs", body={"kind": "tts", "text": "hi"})

    # Then it carries a SigV4 signature for execute-api in the URL's region over the body sent
    (sent,) = capture.sent
    auth = sent.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert "host" in auth.split("SignedHeaders=")[1]
    assert sent.headers["X-Amz-Security-Token"] == "token"
    assert json.loads(sent.body or b"{}") == {"kind": "tts", "text": "hi"}


def test_id_token_requests_carry_the_token_and_no_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given credentials in the environment and a Cognito-mode target
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    session = requests.Session()
    capture = Capture()
    session.mount("https://", capture)
    target = cli.Target("https://users1234.execute-api.eu-west-1.amazonaws.com/dev", id_token="eyJ.id.token")

    # When a request is sent
    cli.ApiClient(target, session).call("GET", "/jobs")

    # Then the Authorization header is the token itself (what a Cognito authorizer reads), not SigV4
    (sent,) = capture.sent
    assert sent.headers["Authorization"] == "eyJ.id.token"
    assert "X-Amz-Date" not in sent.headers


class Scripted(requests.adapters.BaseAdapter):
    """Answers each request with the next (status, body) of a script; an exception is raised instead."""

    def __init__(self, *answers: tuple[int, dict[str, Any]] | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code, response._content = answer[0], json.dumps(answer[1]).encode()
        return response

    def close(self) -> None:
        pass


def _scripted_client(adapter: Scripted) -> cli.ApiClient:
    session = requests.Session()
    session.mount("http://", adapter)
    return cli.ApiClient(cli.Target("http://127.0.0.1:9/local"), session, retry_delays=(0.0, 0.0))


def test_a_submission_is_retried_with_its_idempotency_key_until_accepted() -> None:
    # Given an API that times out once, then answers 503, then accepts
    adapter = Scripted(
        requests.ConnectionError("reset"), (503, {"message": "try again"}), (202, {"job_id": "j"})
    )
    # When a POST carrying an Idempotency-Key is sent
    answer = _scripted_client(adapter).call(
        "POST", "/jobs", body={}, headers={"Idempotency-Key": "k-1234567"}
    )
    # Then it was sent three times, always with the same key, and the acceptance is returned
    assert answer == {"job_id": "j"}
    assert [r.headers["Idempotency-Key"] for r in adapter.sent] == ["k-1234567"] * 3


def test_a_post_without_idempotency_key_is_never_repeated() -> None:
    adapter = Scripted((503, {"message": "try again"}), (200, {}))
    with pytest.raises(cli.ApiFailure) as failure:
        _scripted_client(adapter).call("POST", "/jobs/x/cancel")
    assert failure.value.status == 503 and len(adapter.sent) == 1


def test_retries_end_with_the_last_answer() -> None:
    adapter = Scripted(*[(503, {"message": "still starting"})] * 3)
    with pytest.raises(cli.ApiFailure, match="still starting"):
        _scripted_client(adapter).call("GET", "/jobs")
    assert len(adapter.sent) == 3


def test_local_api_requests_are_not_signed() -> None:
    session = requests.Session()
    capture = Capture()
    session.mount("http://", capture)
    cli.ApiClient(cli.Target("http://127.0.0.1:9/local"), session).call("GET", "/health")
    assert "Authorization" not in capture.sent[0].headers


def test_signature_verifies_with_botocore() -> None:
    # Given a prepared request signed by the CLI
    credentials = Credentials("AKIDEXAMPLE", "secret")
    prepared = requests.Request(
        "GET", "https://abc.execute-api.us-east-1.amazonaws.com/dev/jobs", params={"status": "queued"}
    ).prepare()
    cli.sign_request(prepared, "us-east-1", credentials)

    # Then botocore, signing the same request at the same instant, computes the same signature
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    again = AWSRequest(method="GET", url=prepared.url, headers={"X-Amz-Date": prepared.headers["X-Amz-Date"]})
    signer = SigV4Auth(credentials, "execute-api", "us-east-1")
    again.context["timestamp"] = prepared.headers["X-Amz-Date"]
    expected = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert prepared.headers["Authorization"].endswith(f"Signature={expected}")


def test_multipart_stream_is_a_well_formed_form(tmp_path: Path) -> None:
    # Given fields and a file  When streamed
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00video-bytes" * 1000)
    stream = cli.MultipartStream(
        {"key": "input/x/source.mp4", "Content-Type": "video/mp4"}, path, "video/mp4"
    )
    body = b"".join(iter(stream))

    # Then its length is what it announced, the fields come first and the file last (as S3 requires)
    assert len(body) == len(stream)
    boundary = stream.content_type.split("boundary=")[1].encode()
    parts = body.split(b"--" + boundary)
    assert b'name="key"' in parts[1] and b'name="Content-Type"' in parts[2]
    assert b'name="file"; filename="clip.mp4"' in parts[3] and parts[3].endswith(path.read_bytes() + b"\r\n")
    assert parts[4] == b"--\r\n"


@pytest.mark.parametrize(
    ("name", "url", "expected"),
    [
        ("final", "https://b.s3.amazonaws.com/jobs/j/final.mp4?X-Amz-Signature=1", "final.mp4"),
        ("subtitles.vtt", "https://b/x/narration.vtt", "subtitles.vtt"),
        ("../../etc/passwd", "https://b/x/y", "_.._etc_passwd"),
        ("...", "https://b/x/y.wav", "output.wav"),
    ],
)
def test_output_filenames_are_safe(name: str, url: str, expected: str) -> None:
    assert cli.output_filename(name, url) == expected


def test_main_mounts_the_local_cloud_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a `storyflow_local.cli` module with a typer app (or none)  When main() builds the CLI
    # Then `local` is mounted once when it exists, and the CLI works without it
    import sys
    import types

    import typer

    monkeypatch.setattr(commands.app, "registered_groups", list(commands.app.registered_groups))
    fake = types.ModuleType("storyflow_local.cli")
    fake.app = typer.Typer()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "storyflow_local.cli", fake)
    commands._mount_local()
    commands._mount_local()
    assert [group.name for group in commands.app.registered_groups].count("local") == 1


STORY_REQUEST = {"kind": "story", "scenes": [{"text": "a"}, {"text": "b"}]}


@pytest.fixture
def story_machine(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    return state_machine("storyflow-story", "STORY_STATE_MACHINE_ARN", monkeypatch)


def test_submit_story_from_a_scenes_file(
    api: ApiServer, store: JobStore, story_machine: str, tmp_path: Path
) -> None:
    # Given a scenes file (a JSON array)
    scenes = tmp_path / "scenes.json"
    scenes.write_text(
        json.dumps([{"text": "A fox dreams."}, {"text": "It leaps.", "visual_prompt": "a leap"}])
    )
    # When a story is submitted with it
    result = run(api, "submit", "story", "--scenes", str(scenes), "--set", "aspect=9:16")
    # Then the story job has those scenes and its execution started
    assert result.exit_code == 0, result.output
    (job,) = store.list(JobStatus.QUEUED)[0]
    assert [s["text"] for s in job.request["scenes"]] == ["A fox dreams.", "It leaps."]
    assert job.request["aspect"] == "9:16"
    assert aws.client("stepfunctions").list_executions(stateMachineArn=story_machine)["executions"]


def test_scenes_are_for_stories_and_must_be_a_list(api: ApiServer, tmp_path: Path) -> None:
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps({"not": "a list"}))
    refused = run(api, "submit", "story", "--scenes", str(scenes))
    assert refused.exit_code == 2 and "JSON array of scenes" in refused.output
    scenes.write_text(json.dumps([{"text": "x"}]))
    wrong_kind = run(api, "submit", "tts", "--scenes", str(scenes), "--text", "hi")
    assert wrong_kind.exit_code == 2 and "--scenes is for story jobs" in wrong_kind.output


def test_regenerate_reopens_the_scene_and_starts_the_next_revision(
    api: ApiServer, store: JobStore, story_machine: str
) -> None:
    # Given a completed story with two planned scenes
    job = store.create(JobKind.STORY, "story-20261202-0123456789ab", STORY_REQUEST)
    store.transition(job.job_id, JobStatus.RUNNING)
    scenes = [StoryScene(text="a"), StoryScene(text="b")]
    store.record_plan(job.job_id, 0, scenes=scenes, children=[], progress=Progress(done=2, total=2))
    store.transition(job.job_id, JobStatus.COMPLETED)
    # When scene 1 is regenerated with a new text
    result = run(api, "regenerate", job.job_id, "1", "--text", "b, again")
    # Then the story is queued at revision 1 with the new text, and the revision's execution started
    assert result.exit_code == 0, result.output
    reopened = store.get(job.job_id)
    assert (reopened.status, reopened.revision, reopened.scenes[1].text) == (JobStatus.QUEUED, 1, "b, again")
    executions = aws.client("stepfunctions").list_executions(stateMachineArn=story_machine)["executions"]
    assert [e["name"] for e in executions] == [f"{job.job_id}-r1"]
    # ... and a scene it does not have is the API's 404, naming the field
    missing = run(api, "regenerate", job.job_id, "7")
    assert missing.exit_code == 1 and "404" in missing.output and "scene" in missing.output
