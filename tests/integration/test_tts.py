"""The tts workflow on the local cloud (or the stack STORYFLOW_STACK names): the real API and TTS queue, the
real state machine, the generic async inference and the real tts container (espeak engine locally)."""

from __future__ import annotations

import json
import uuid
import wave
from io import BytesIO
from pathlib import Path
from typing import Any

import av
import pysubs2
import pytest
import requests

from storyflow import keys
from tests.integration.conftest import FAULTY_TTS_TEXT
from tests.support import jobs_api
from tests.support.jobs_api import api
from tests.support.poll import wait_until
from tests.support.target import IntegrationTarget

TIMEOUT = 300
OUTPUTS = {"narration.wav", "narration.m4a", "narration.srt", "narration.vtt", "words.json"}
TEXT = (
    "The lighthouse keeper climbed the stairs at dusk. "
    "He lit the great lamp, and its beam swept across the restless water, "
    "over the rocks and the small boats that were hurrying home. "
    "Nobody thanked him; nobody ever did."
)


def wait_finished(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    return jobs_api.wait_finished(target, job_id, TIMEOUT)


def downloads(target: IntegrationTarget, job_id: str) -> dict[str, bytes]:
    urls = api(target, "GET", f"/jobs/{job_id}/outputs")["outputs"]
    return {name: requests.get(url, timeout=60).content for name, url in urls.items()}


def wav_seconds(data: bytes) -> float:
    with wave.open(BytesIO(data)) as audio:
        return audio.getnframes() / audio.getframerate()


def m4a_seconds(data: bytes) -> float:
    with av.open(BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        return sum(frame.samples for frame in container.decode(audio=0)) / stream.rate


def assert_sane_narration(files: dict[str, bytes], text: str) -> dict[str, Any]:
    """The five outputs agree: one audio length, word timings monotonic inside it, cues kept to the rules."""
    assert set(files) == OUTPUTS
    seconds = wav_seconds(files["narration.wav"])
    assert seconds > 3
    assert abs(m4a_seconds(files["narration.m4a"]) - seconds) < 0.1
    words = json.loads(files["words.json"])
    assert words["duration_ms"] == pytest.approx(seconds * 1000, abs=2)
    timings = words["words"]
    assert [w["text"] for w in timings] == text.split()
    previous_end = 0
    for word in timings:
        assert previous_end <= word["start_ms"] <= word["end_ms"] <= words["duration_ms"], word
        previous_end = word["end_ms"]
    # the last word ends in the last second of the audio (espeak stops talking, then trailing silence)
    assert words["duration_ms"] - timings[-1]["end_ms"] < 1000
    srt = pysubs2.SSAFile.from_string(files["narration.srt"].decode(), format_="srt")
    vtt = files["narration.vtt"].decode()
    assert vtt.startswith("WEBVTT")
    assert len(srt) >= 4  # four sentences, never two in one cue
    for cue in srt:
        lines = cue.plaintext.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines), lines
    assert " ".join(cue.plaintext.replace("\n", " ") for cue in srt) == " ".join(text.split())
    return words


def test_api_narration_writes_audio_subtitles_and_word_timings(target: IntegrationTarget) -> None:
    # Given a narration request through the API
    accepted = api(
        target, "POST", "/jobs", json={"kind": "tts", "text": TEXT, "voice": "bf_emma", "speed": 1.1}
    )
    # When the workflow runs
    job = wait_finished(target, accepted["job_id"])
    # Then the job completed with its five outputs under tts/{job_id}/, which are consistent with each other
    assert job["status"] == "completed", job.get("error")
    prefix = f"s3://{target.outputs['OutputBucketName']}/tts/{job['job_id']}/"
    assert job["outputs"] == {name: prefix + name for name in OUTPUTS}
    words = assert_sane_narration(downloads(target, job["job_id"]), TEXT)
    assert (words["voice"], words["lang"]) == ("bf_emma", "en-gb")


def queue_message(**fields: Any) -> dict[str, Any]:
    return {"parent_id": f"story-{uuid.uuid4().hex[:8]}", "task_id": "scene-1", "text": TEXT, **fields}


def queue_empty(target: IntegrationTarget, url: str) -> bool:
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def executions_named(target: IntegrationTarget, job_id: str) -> int:
    pages = (
        target.client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(stateMachineArn=target.outputs["TtsStateMachineArn"])
    )
    return [e["name"] for page in pages for e in page["executions"]].count(job_id)


def test_queue_takes_raw_and_sns_wrapped_messages_once_each(target: IntegrationTarget) -> None:
    # Given one message sent raw to the TTS queue and one published to its topic (SNS-wrapped on the queue)
    raw, wrapped = queue_message(voice="am_adam"), queue_message(voice="af_heart", speed=0.9)
    queue = target.outputs["TtsQueueUrl"]
    target.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(raw))
    target.client("sns").publish(TopicArn=target.outputs["TtsTopicArn"], Message=json.dumps(wrapped))
    # When the intake takes them: each job's id derives from its parent_id and task_id
    ids = [keys.derived_job_id("tts", m["parent_id"], m["task_id"]) for m in (raw, wrapped)]
    jobs = [wait_finished(target, job_id) for job_id in ids]
    # Then both narrations completed with sane outputs
    for job in jobs:
        assert job["status"] == "completed", job.get("error")
        assert_sane_narration(downloads(target, job["job_id"]), TEXT)
    assert json.loads(downloads(target, ids[1])["words.json"])["voice"] == "af_heart"
    # When the raw message is delivered again (a redelivery or a duplicate send), and the queue drains
    target.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(raw))
    wait_until(lambda: queue_empty(target, queue), 60, "the duplicate to be consumed")
    # Then no second execution started, and the job is unchanged
    assert executions_named(target, ids[0]) == 1
    assert api(target, "GET", f"/jobs/{ids[0]}")["status"] == "completed"


def test_bad_queue_messages_fail_a_job_or_go_to_the_dead_letter_queue(target: IntegrationTarget) -> None:
    sqs = target.client("sqs")
    queue, dead = target.outputs["TtsQueueUrl"], target.outputs["TtsDeadLetterQueueUrl"]
    # Given a message that names its job but asks for an unknown voice, and one that is not JSON at all
    invalid = queue_message(voice="xx_nobody")
    marker = f"not json {uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(invalid))
    sqs.send_message(QueueUrl=queue, MessageBody=marker)
    # When the intake takes them
    job = wait_finished(target, keys.derived_job_id("tts", invalid["parent_id"], invalid["task_id"]))
    # Then the first is a failed job whose cause names the field, and nothing ran for it
    assert (job["status"], job["error"]["error"]) == ("failed", "InvalidRequest"), job
    assert "voice" in job["error"]["cause"]
    assert not job.get("execution_arn")

    # ... and the second went to the dead-letter queue with its reason, not back to the queue
    def dead_lettered() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [m for m in messages.get("Messages", []) if m["Body"] == marker]

    found = wait_until(dead_lettered, 60, "the unreadable message in the dead-letter queue")
    assert "not JSON" in found[0]["MessageAttributes"]["storyflow-error"]["StringValue"]
    wait_until(lambda: queue_empty(target, queue), 60, "the TTS queue to drain")


@pytest.mark.local_only("the engine fault is injected through the local cloud's container environment")
def test_engine_failure_fails_the_job_with_its_typed_error(target: IntegrationTarget) -> None:
    # Given a narration whose text the engine fails on (fault injected for that text only)
    accepted = api(target, "POST", "/jobs", json={"kind": "tts", "text": f"Say {FAULTY_TTS_TEXT} now."})
    # When the workflow runs (the failed inference is retried once first)
    job = wait_finished(target, accepted["job_id"])
    # Then the job failed with the container's typed error and cause, and the execution ended failed
    assert job["status"] == "failed", job
    assert job["error"]["error"] == "InjectedFault", job["error"]
    assert FAULTY_TTS_TEXT in job["error"]["cause"]
    sfn = target.client("stepfunctions")
    assert sfn.describe_execution(executionArn=job["execution_arn"])["status"] == "FAILED"


def test_cli_submit_watch_then_get_downloads_the_narration(target: IntegrationTarget, tmp_path: Path) -> None:
    import re

    from typer.testing import CliRunner

    from storyflow_cli.commands import app

    runner, base = CliRunner(), ["--api-url", target.api_url]
    # Given `storyflow submit tts --text ... --watch`
    submitted = runner.invoke(app, [*base, "submit", "tts", "--text", "Short and sweet. The end.", "--watch"])
    # Then it followed the job to the end
    assert submitted.exit_code == 0, submitted.output
    match = re.search(r"submitted (tts-[a-z0-9-]+)", submitted.output)
    assert match, submitted.output
    assert api(target, "GET", f"/jobs/{match[1]}")["status"] == "completed"
    # When `storyflow get JOB --dir DIR`
    got = runner.invoke(app, [*base, "get", match[1], "--dir", str(tmp_path)])
    # Then the audio, subtitles and timings are on disk
    assert got.exit_code == 0, got.output
    assert {path.name for path in tmp_path.iterdir()} == OUTPUTS
    assert (tmp_path / "narration.srt").read_text().startswith("1\n")
