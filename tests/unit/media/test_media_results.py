"""The media container's result protocol: result.json on success, error.json on failure, at
s3://$RESULT_BUCKET/jobs/{job}/steps/{chunk|reassemble}/ — what the state machine reads on AWS, where a
stopped task reports only its exit code (stderr stays in the logs)."""

from __future__ import annotations

import json
import signal

import boto3
import pytest
from storyflow_media import cli

from .conftest import Clips
from .media_helpers import media, read_json

JOB = "st-20261123-0f0e0d0c0b0a"
SOURCE_KEY = f"input/{JOB}/source.mp4"


def keys_under(bucket: str, prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_chunk_writes_result_json_with_its_output(
    clips: Clips, cli_env: dict[str, str], buckets: tuple[str, str]
) -> None:
    # Given an uploaded source and RESULT_BUCKET set, as on the media task definition
    inb, outb = buckets
    boto3.client("s3").upload_file(str(clips.silent), inb, SOURCE_KEY)
    # When chunk succeeds
    run = media({**cli_env, "RESULT_BUCKET": outb}, "chunk", "--job-id", JOB, "--bucket", inb)
    # Then jobs/J/steps/chunk/result.json is the JSON line it printed, and there is no error.json
    assert (run.returncode, run.stderr) == (0, "")
    assert read_json(outb, f"jobs/{JOB}/steps/chunk/result.json") == json.loads(run.stdout)
    assert keys_under(outb, f"jobs/{JOB}/steps/") == [f"jobs/{JOB}/steps/chunk/result.json"]
    # ... tagged intermediate (the job keeps what it says): it expires with the job's other intermediates
    tagging = boto3.client("s3").get_object_tagging(Bucket=outb, Key=f"jobs/{JOB}/steps/chunk/result.json")
    assert tagging["TagSet"] == [{"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}]


def test_not_a_video_writes_error_json_and_still_exits_2_with_its_line(
    cli_env: dict[str, str], buckets: tuple[str, str]
) -> None:
    # Given an empty "mp4" upload
    inb, outb = buckets
    boto3.client("s3").put_object(Bucket=inb, Key=SOURCE_KEY, Body=b"")
    # When chunk runs
    run = media({**cli_env, "RESULT_BUCKET": outb}, "chunk", "--job-id", JOB, "--bucket", inb)
    # Then exit 2 and the one stderr line, as before
    assert run.returncode == 2
    (line,) = run.stderr.splitlines()
    message = f"not a video: s3://{inb}/{SOURCE_KEY}: empty file (0 bytes)"
    assert line == f"error: NotAVideo: {message}"
    # And jobs/J/steps/chunk/error.json carries the typed error and its message
    assert read_json(outb, f"jobs/{JOB}/steps/chunk/error.json") == {
        "error": "NotAVideo",
        "message": message,
        "job_id": JOB,
        "step": "chunk",
        "exit_code": 2,
    }
    assert keys_under(outb, f"jobs/{JOB}/steps/") == [f"jobs/{JOB}/steps/chunk/error.json"]
    tagging = boto3.client("s3").get_object_tagging(Bucket=outb, Key=f"jobs/{JOB}/steps/chunk/error.json")
    assert tagging["TagSet"] == [{"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}]


def test_reassemble_failure_writes_its_own_steps_error_json(
    cli_env: dict[str, str], buckets: tuple[str, str]
) -> None:
    # Given no manifest, When reassemble runs
    inb, outb = buckets
    run = media(
        {**cli_env, "RESULT_BUCKET": outb},
        "reassemble",
        "--job-id",
        JOB,
        "--input-bucket",
        inb,
        "--output-bucket",
        outb,
    )
    # Then exit 1, and error.json under steps/reassemble names MissingObject
    assert run.returncode == 1
    error = read_json(outb, f"jobs/{JOB}/steps/reassemble/error.json")
    assert (error["error"], error["step"], error["exit_code"]) == ("MissingObject", "reassemble", 1)
    assert error["message"] == f"s3://{inb}/segments/{JOB}/manifest.json does not exist"


def test_a_failed_error_json_write_never_masks_the_error(
    cli_env: dict[str, str],
    buckets: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given RESULT_BUCKET naming a bucket that does not exist, and no upload
    inb, _ = buckets
    monkeypatch.setenv("RESULT_BUCKET", "no-such-result-bucket")
    # When chunk fails
    code = cli.main(["chunk", "--job-id", JOB, "--bucket", inb])
    # Then the original error decides the exit code and comes first; the failed write is a warning
    assert code == 1
    first, second = capsys.readouterr().err.splitlines()
    assert first == f"error: MissingObject: s3://{inb}/{SOURCE_KEY} does not exist"
    assert second.startswith(
        f"warning: could not write s3://no-such-result-bucket/jobs/{JOB}/steps/chunk/error.json: "
    )


def test_without_result_bucket_nothing_is_written(
    cli_env: dict[str, str], buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inb, outb = buckets
    monkeypatch.delenv("RESULT_BUCKET", raising=False)
    assert cli.main(["chunk", "--job-id", JOB, "--bucket", inb]) == 1
    assert keys_under(outb, "jobs/") == []


def test_sigterm_writes_terminated_error_json_before_exiting(
    cli_env: dict[str, str], buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a command unwinding after SIGTERM (os._exit stubbed so the test process survives)
    _, outb = buckets
    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    signals = cli._Signals(cli.StepReport(outb, JOB, "reassemble"))
    signals.received = cli.Terminated(signal.SIGTERM, "SIGTERM")
    # When it exits
    with pytest.raises(SystemExit):
        signals.exit()
    # Then 143, and error.json says Terminated
    assert exits == [143]
    assert read_json(outb, f"jobs/{JOB}/steps/reassemble/error.json") == {
        "error": "Terminated",
        "message": "received SIGTERM",
        "job_id": JOB,
        "step": "reassemble",
        "exit_code": 143,
    }
