"""`storyflow-media` end to end against a moto server: S3 layout, manifest, tags, exit codes, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from storyflow_media import cli, s3io

from .conftest import Clips
from .media_helpers import audio_seconds, frame_times, top_level_boxes

JOB = "st-20261123-1a2b3c4d5e6f"
SOURCE_KEY = f"input/{JOB}/source.mp4"
TAG = [{"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}]


def media(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storyflow_media", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tags(s3: Any, bucket: str, key: str) -> list[dict[str, str]]:
    return s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]


def test_chunk_then_reassemble_through_s3(
    clips: Clips, cli_env: dict[str, str], buckets: tuple[str, str], tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    dynamodb = boto3.client("dynamodb")
    inb, outb = buckets
    table = f"jobs-{inb}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(
        TableName=table,
        Item={"job_id": {"S": JOB}, "progress": {"M": {"done": {"N": "0"}, "total": {"N": "0"}}}},
    )
    # Given an uploaded 6 s source with a keyframe every second and audio
    s3.upload_file(str(clips.gop1), inb, SOURCE_KEY)

    # When `storyflow-media chunk` runs with 2 s segments and the jobs table
    run = media(
        cli_env, "chunk", "--job-id", JOB, "--bucket", inb, "--segment-seconds", "2", "--jobs-table", table
    )

    # Then it exits 0 with one JSON line on stdout and nothing on stderr
    assert (run.returncode, run.stderr) == (0, "")
    summary = json.loads(run.stdout)
    assert run.stdout.count("\n") == 1
    assert summary["segments"] == 3 and summary["frames"] == 144 and summary["reencoded"] is False
    # And the manifest is the JSON array the Distributed Map reads
    manifest = json.loads(s3.get_object(Bucket=inb, Key=f"segments/{JOB}/manifest.json")["Body"].read())
    assert manifest == [
        {
            "job_id": JOB,
            "index": i,
            "bucket": inb,
            "key": f"segments/{JOB}/{i:05d}.mp4",
            "start": 2.0 * i,
            "duration": 2.0,
            "frames": 48,
        }
        for i in range(3)
    ]
    # And every segment (and the manifest) is tagged as an intermediate; the source is not
    for entry in manifest:
        assert tags(s3, inb, entry["key"]) == TAG
    assert tags(s3, inb, f"segments/{JOB}/manifest.json") == TAG
    assert tags(s3, inb, SOURCE_KEY) == []
    # And the job's progress.total is the segment count
    item = dynamodb.get_item(TableName=table, Key={"job_id": {"S": JOB}})["Item"]
    assert item["progress"]["M"] == {"done": {"N": "0"}, "total": {"N": "3"}}

    # Given the inferred segments in the output bucket (here: the input segments, unchanged)
    for entry in manifest:
        s3.copy_object(
            Bucket=outb,
            Key=f"jobs/{JOB}/segments/{entry['index']:05d}.mp4",
            CopySource={"Bucket": inb, "Key": entry["key"]},
        )
    # When `storyflow-media reassemble` runs
    run = media(cli_env, "reassemble", "--job-id", JOB, "--input-bucket", inb, "--output-bucket", outb)

    # Then it prints one JSON line and writes jobs/J/final.mp4 with every frame and the source's audio
    assert (run.returncode, run.stderr) == (0, "")
    result = json.loads(run.stdout)
    assert result["output_uri"] == f"s3://{outb}/jobs/{JOB}/final.mp4"
    assert (result["frames"], result["source_frames"], result["video"], result["audio"]) == (
        144,
        144,
        "copy",
        "copy",
    )
    final = tmp_path / "final.mp4"
    s3.download_file(outb, f"jobs/{JOB}/final.mp4", str(final))
    assert len(frame_times(final)) == 144
    final_audio, source_audio = audio_seconds(final), audio_seconds(clips.gop1)
    assert final_audio is not None and source_audio is not None
    assert abs(final_audio - source_audio) <= 0.050
    assert top_level_boxes(final)[:2] == ["ftyp", "moov"]
    # And input and output segments are tagged as intermediates, the final is kept
    for entry in manifest:
        assert tags(s3, inb, entry["key"]) == TAG
        assert tags(s3, outb, f"jobs/{JOB}/segments/{entry['index']:05d}.mp4") == TAG
    assert tags(s3, outb, f"jobs/{JOB}/final.mp4") == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file (0 bytes)"), (b"definitely not a video\n" * 50, "unrecognised format")],
    ids=["zero-bytes", "text"],
)
def test_chunk_of_not_a_video_exits_2_with_one_line(
    cli_env: dict[str, str], buckets: tuple[str, str], content: bytes, reason: str
) -> None:
    # Given an "mp4" upload that is empty or text
    inb, _ = buckets
    boto3.client("s3").put_object(Bucket=inb, Key=SOURCE_KEY, Body=content)
    # When chunk runs
    run = media(cli_env, "chunk", "--job-id", JOB, "--bucket", inb)
    # Then it exits 2 with exactly one line on stderr naming the object, and writes nothing
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"error: NotAVideo: not a video: s3://{inb}/{SOURCE_KEY}: {reason}")
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=inb, Prefix="segments/")


def test_sigterm_exits_promptly_with_a_line(cli_env: dict[str, str]) -> None:
    # Given an S3 endpoint that accepts the connection and never answers
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        env = {**cli_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "storyflow_media", "chunk", "--job-id", JOB, "--bucket", "media-in-x"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = server.accept()  # the command is now waiting on S3
            # When the task is stopped (ECS sends SIGTERM)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            connection.close()
        finally:
            proc.kill()
    # Then it exits 143 with one line, without waiting for the stuck request to time out
    assert proc.returncode == 128 + signal.SIGTERM
    assert (out, err) == ("", "error: Terminated: received SIGTERM\n")


# In-process: argument handling and the error paths that need no media.


def test_help_describes_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "chunk" in text and "reassemble" in text and "Exit codes" in text


def test_a_job_id_that_could_escape_its_prefix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["chunk", "--job-id", "../etc", "--bucket", "b"])
    assert exit_.value.code == 2
    assert "does not match" in capsys.readouterr().err


def test_missing_source_exits_1_with_one_line(
    cli_env: dict[str, str], buckets: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no upload, When chunk runs, Then it exits 1 with a one-line MissingObject reason
    inb, _ = buckets
    assert cli.main(["chunk", "--job-id", JOB, "--bucket", inb]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: MissingObject: s3://{inb}/{SOURCE_KEY} does not exist\n"


def test_reassemble_refuses_a_manifest_with_gaps(
    cli_env: dict[str, str], buckets: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a manifest listing segments 0 and 2 only
    inb, outb = buckets
    entries = [
        {"job_id": JOB, "index": i, "bucket": inb, "key": f"segments/{JOB}/{i:05d}.mp4"} for i in (0, 2)
    ]
    s3io.put_json(boto3.client("s3"), inb, f"segments/{JOB}/manifest.json", entries)
    # Then reassemble exits 1 naming the problem
    assert cli.main(["reassemble", "--job-id", JOB, "--input-bucket", inb, "--output-bucket", outb]) == 1
    assert capsys.readouterr().err.startswith("error: BadManifest: ")


def test_progress_total_is_set_even_without_a_progress_map(
    cli_env: dict[str, str], buckets: tuple[str, str]
) -> None:
    # Given a job item with no `progress` attribute
    dynamodb = boto3.client("dynamodb")
    table = f"jobs-{buckets[0]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"job_id": {"S": JOB}, "status": {"S": "running"}})
    # When the segment count is recorded
    s3io.set_progress_total(dynamodb, table, JOB, 7)
    # Then progress is created with done 0
    item = dynamodb.get_item(TableName=table, Key={"job_id": {"S": JOB}})["Item"]
    assert item["progress"]["M"] == {"done": {"N": "0"}, "total": {"N": "7"}}
    assert item["status"] == {"S": "running"}
