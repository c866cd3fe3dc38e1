"""`storyflow-media` end to end against a moto server: S3 layout, manifest, tags, exit codes, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from storyflow_media import cli, s3io

from .conftest import Clips
from .media_helpers import (
    assert_same_audio_length,
    audio_seconds,
    frame_times,
    media,
    stream_kinds,
    top_level_boxes,
)

JOB = "st-20261123-1a2b3c4d5e6f"
SOURCE_KEY = f"input/{JOB}/source.mp4"
AUDIO_KEY = f"segments/{JOB}/audio.m4a"
MANIFEST_KEY = f"segments/{JOB}/manifest.json"
TAG = [{"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}]


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
    assert summary["audio_key"] == AUDIO_KEY
    # And the manifest is the JSON array the Distributed Map reads, every entry naming the audio copy
    manifest = json.loads(s3.get_object(Bucket=inb, Key=MANIFEST_KEY)["Body"].read())
    assert manifest == [
        {
            "job_id": JOB,
            "index": i,
            "bucket": inb,
            "key": f"segments/{JOB}/{i:05d}.mp4",
            "output_key": f"jobs/{JOB}/segments/{i:05d}.mp4",
            "start": 2.0 * i,
            "duration": 2.0,
            "frames": 48,
            "audio_key": AUDIO_KEY,
        }
        for i in range(3)
    ]
    # And the audio copy is an audio-only MP4 as long as the source's audio
    audio_copy = tmp_path / "audio.m4a"
    s3.download_file(inb, AUDIO_KEY, str(audio_copy))
    assert stream_kinds(audio_copy) == ["audio"]
    assert s3.head_object(Bucket=inb, Key=AUDIO_KEY)["ContentType"] == "audio/mp4"
    copy_seconds, source_seconds = audio_seconds(audio_copy), audio_seconds(clips.gop1)
    assert copy_seconds is not None and source_seconds is not None
    assert abs(copy_seconds - source_seconds) <= 0.050
    # And every segment, the audio copy and the manifest are tagged as intermediates; the source is not
    for entry in manifest:
        assert tags(s3, inb, entry["key"]) == TAG
    assert tags(s3, inb, AUDIO_KEY) == TAG
    assert tags(s3, inb, MANIFEST_KEY) == TAG
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
    # And the source is gone: reassemble takes the audio from chunk's copy
    s3.delete_object(Bucket=inb, Key=SOURCE_KEY)
    # When `storyflow-media reassemble` runs
    run = media(cli_env, "reassemble", "--job-id", JOB, "--input-bucket", inb, "--output-bucket", outb)

    # Then it prints one JSON line and writes jobs/J/final.mp4 with every frame and the source's audio
    assert (run.returncode, run.stderr) == (0, "")
    result = json.loads(run.stdout)
    assert result["output_uri"] == f"s3://{outb}/jobs/{JOB}/final.mp4"
    assert result["audio_uri"] == f"s3://{inb}/{AUDIO_KEY}"
    assert (result["frames"], result["source_frames"], result["video"], result["audio"]) == (
        144,
        144,
        "copy",
        "copy",
    )
    final = tmp_path / "final.mp4"
    s3.download_file(outb, f"jobs/{JOB}/final.mp4", str(final))
    assert len(frame_times(final)) == 144
    assert_same_audio_length(final, clips.gop1)
    assert top_level_boxes(final)[:2] == ["ftyp", "moov"]
    # And input and output segments and the audio copy are tagged as intermediates, the final is kept
    for entry in manifest:
        assert tags(s3, inb, entry["key"]) == TAG
        assert tags(s3, outb, f"jobs/{JOB}/segments/{entry['index']:05d}.mp4") == TAG
    assert tags(s3, inb, AUDIO_KEY) == TAG
    assert tags(s3, outb, f"jobs/{JOB}/final.mp4") == []


# In-process from here: the audio of reassemble, as the manifest says where it is.


def chunk_in_process(source: Path, inb: str, outb: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Upload `source`, chunk it to 2 s, and put its segments where inference would leave them.

    Returns chunk's one-line summary.
    """
    s3 = boto3.client("s3")
    s3.upload_file(str(source), inb, SOURCE_KEY)
    assert cli.main(["chunk", "--job-id", JOB, "--bucket", inb, "--segment-seconds", "2"]) == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    for index in range(summary["segments"]):
        s3.copy_object(
            Bucket=outb,
            Key=f"jobs/{JOB}/segments/{index:05d}.mp4",
            CopySource={"Bucket": inb, "Key": f"segments/{JOB}/{index:05d}.mp4"},
        )
    return summary


def reassemble_in_process(
    inb: str, outb: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> tuple[dict[str, Any], Path]:
    """Run reassemble; returns its one-line result and the downloaded final.mp4."""
    assert cli.main(["reassemble", "--job-id", JOB, "--input-bucket", inb, "--output-bucket", outb]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    final = tmp_path / "final.mp4"
    boto3.client("s3").download_file(outb, f"jobs/{JOB}/final.mp4", str(final))
    return result, final


def rewrite_manifest(inb: str, change: Callable[[dict[str, Any]], None]) -> None:
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=inb, Key=MANIFEST_KEY)["Body"].read())
    for entry in manifest:
        change(entry)
    s3io.put_json(s3, inb, MANIFEST_KEY, manifest)


def test_reassemble_of_a_manifest_without_audio_key_takes_the_audio_from_the_source(
    clips: Clips,
    cli_env: dict[str, str],
    buckets: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Given a job chunked before chunk copied the audio: a manifest without audio_key, no audio copy
    inb, outb = buckets
    chunk_in_process(clips.gop1, inb, outb, capsys)
    rewrite_manifest(inb, lambda entry: entry.pop("audio_key"))
    boto3.client("s3").delete_object(Bucket=inb, Key=AUDIO_KEY)
    # When reassemble runs
    result, final = reassemble_in_process(inb, outb, capsys, tmp_path)
    # Then it muxed the source's audio: every frame, the audio within 50 ms of the source's
    assert result["audio_uri"] == f"s3://{inb}/{SOURCE_KEY}"
    assert (result["frames"], result["audio"]) == (144, "copy")
    assert len(frame_times(final)) == 144
    assert_same_audio_length(final, clips.gop1)


def test_source_whose_audio_does_not_fit_mp4_keeps_it_in_the_source(
    clips: Clips,
    cli_env: dict[str, str],
    buckets: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Given a source with PCM audio (which reassemble encodes to AAC), chunked
    inb, outb = buckets
    summary = chunk_in_process(clips.pcm, inb, outb, capsys)
    # Then chunk wrote no audio copy and its manifest names none (the audio stays in the source)
    assert summary["audio_key"] is None
    s3 = boto3.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=inb, Prefix=AUDIO_KEY)
    manifest = json.loads(s3.get_object(Bucket=inb, Key=MANIFEST_KEY)["Body"].read())
    assert all("audio_key" not in entry for entry in manifest)
    # When reassemble runs, Then it encodes the source's audio to AAC, within 50 ms of its length
    result, final = reassemble_in_process(inb, outb, capsys, tmp_path)
    assert (result["audio"], result["audio_uri"]) == ("aac", f"s3://{inb}/{SOURCE_KEY}")
    assert_same_audio_length(final, clips.pcm)


def test_source_without_audio_is_not_read_again(
    clips: Clips,
    cli_env: dict[str, str],
    buckets: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Given a silent source, chunked: its manifest says there is no audio (audio_key null)
    inb, outb = buckets
    assert chunk_in_process(clips.silent, inb, outb, capsys)["audio_key"] is None
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=inb, Key=MANIFEST_KEY)["Body"].read())
    assert all(entry["audio_key"] is None for entry in manifest)
    # And the source is gone
    s3.delete_object(Bucket=inb, Key=SOURCE_KEY)
    # When reassemble runs, Then it writes the video alone without needing the source
    result, final = reassemble_in_process(inb, outb, capsys, tmp_path)
    assert (result["audio"], result["audio_uri"], result["frames"]) == (None, None, 144)
    assert stream_kinds(final) == ["video"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(audio_key=f"input/{JOB}/source.mp4"), "audio_key is not"),
        (lambda e: e.update(audio_key=None) if e["index"] == 1 else None, "disagree on audio_key"),
    ],
    ids=["foreign-key", "entries-disagree"],
)
def test_reassemble_refuses_a_manifest_whose_audio_key_is_not_chunks(
    clips: Clips,
    cli_env: dict[str, str],
    buckets: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], None],
    reason: str,
) -> None:
    # Given a chunked job whose manifest names another object as the audio, or not in every entry
    inb, outb = buckets
    chunk_in_process(clips.gop1, inb, outb, capsys)
    rewrite_manifest(inb, change)
    # Then reassemble exits 1 with a BadManifest naming the problem
    assert cli.main(["reassemble", "--job-id", JOB, "--input-bucket", inb, "--output-bucket", outb]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: BadManifest: ") and reason in err


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
