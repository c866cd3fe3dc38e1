"""Request models (one per kind), the Job status machine, and the id formats they rely on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from storyflow import keys, registry
from storyflow.errors import BadRequest
from storyflow.models import (
    FINISHED,
    TRANSITIONS,
    Job,
    JobKind,
    JobStatus,
    StereoRequest,
    StoryRequest,
    TtsRequest,
    VideoRequest,
    allowed_sources,
)

REQUEST = TypeAdapter(registry.JobRequest)
SEED = {"parent_id": "parent-1", "task_id": "task-1", "prompt": "a lighthouse at dusk"}


def failing_fields(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in e["loc"]) for e in error.errors()}


# ---------------------------------------------------------------- video: exactly the seed message
def test_video_defaults_are_exactly_the_seed_message_defaults() -> None:
    # Given only the required seed message fields  When parsed
    video = VideoRequest.model_validate(SEED)

    # Then every field and default is the seed format's (plus kind, and the optional clip length and image)
    assert video.model_dump(exclude={"kind", "image_uri", "image_upload", "num_frames", "fps"}) == {
        "parent_id": "parent-1",
        "task_id": "task-1",
        "prompt": "a lighthouse at dusk",
        "seed": None,
        "steps": 15,
        "guidance": 7.0,
        "width": 1280,
        "height": 720,
        "num_videos": 1,
        "negative_prompt": "",
    }
    assert video.kind == "video" and video.image_uri is None


def test_a_full_seed_message_parses_unchanged() -> None:
    message = {**SEED, "seed": 42, "steps": 30, "guidance": 5.5, "width": 832, "height": 480, "num_videos": 2}
    message["negative_prompt"] = "blurry"
    optional = {"kind", "image_uri", "image_upload", "num_frames", "fps"}
    assert VideoRequest.model_validate(message).model_dump(exclude=optional) == message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_videos": 3}, "num_videos"),
        ({"num_videos": 0}, "num_videos"),
        ({"width": 1000}, "width"),
        ({"height": 721}, "height"),
        ({"width": 4096}, "width"),
        ({"steps": 0}, "steps"),
        ({"steps": 101}, "steps"),
        ({"guidance": 31}, "guidance"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"prompt": "x" * 100_000}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),  # whitespace is stripped first
        ({"negative_prompt": "x" * 100_000}, "negative_prompt"),
        ({"parent_id": "../up"}, "parent_id"),
        ({"task_id": "a/b"}, "task_id"),
        ({"task_id": ""}, "task_id"),
        ({"unknown": 1}, "unknown"),
        ({"image_uri": "file:///etc/passwd"}, "image_uri"),
    ],
)
def test_video_refuses_out_of_range_fields(change: dict[str, Any], field: str) -> None:
    # Given a seed message with one bad field  When parsed  Then refused, naming that field
    with pytest.raises(ValidationError) as refused:
        VideoRequest.model_validate({**SEED, **change})
    assert failing_fields(refused.value) == {field}


@pytest.mark.parametrize("missing", ["parent_id", "task_id", "prompt"])
def test_video_requires_the_seed_identity_and_prompt(missing: str) -> None:
    with pytest.raises(ValidationError) as refused:
        VideoRequest.model_validate({k: v for k, v in SEED.items() if k != missing})
    assert failing_fields(refused.value) == {missing}


# ---------------------------------------------------------------- the discriminated union
@pytest.mark.parametrize(
    ("body", "model"),
    [
        ({"kind": "stereo"}, StereoRequest),
        ({"kind": "video", **SEED}, VideoRequest),
        ({"kind": "tts", "text": "hello"}, TtsRequest),
        ({"kind": "story", "prompt": "a fox"}, StoryRequest),
    ],
)
def test_kind_picks_the_request_model(body: dict[str, Any], model: type) -> None:
    assert type(REQUEST.validate_python(body)) is model


@pytest.mark.parametrize("body", [{"kind": "hologram"}, {}, {"kind": None}, {"kind": "VIDEO", **SEED}])
def test_unknown_or_missing_kind_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        REQUEST.validate_python(body)


def test_field_of_another_kind_is_refused() -> None:
    # Given a tts request carrying a video field  Then refused (extra fields are forbidden)
    with pytest.raises(ValidationError) as refused:
        REQUEST.validate_python({"kind": "tts", "text": "hi", "num_videos": 1})
    assert failing_fields(refused.value) == {"tts.num_videos"}


def test_stereo_defaults_and_upload_limit() -> None:
    stereo = StereoRequest()
    assert (stereo.layout, stereo.baseline, stereo.convergence) == ("full", 0.03, 0.5)
    assert stereo.max_upload_bytes == 2 * 1024**3
    with pytest.raises(ValidationError):
        StereoRequest(max_upload_bytes=6 * 1024**3)


def test_story_scenes_bounded() -> None:
    scene = {"text": "n", "visual_prompt": "p"}
    assert len(StoryRequest.model_validate({"scenes": [scene] * 50}).scenes or []) == 50
    for scenes in ([], [scene] * 51, [{"text": " "}]):
        with pytest.raises(ValidationError):
            StoryRequest.model_validate({"scenes": scenes})


# ---------------------------------------------------------------- the status machine
def test_finished_statuses_have_no_way_out() -> None:
    assert {status for status in JobStatus if status.finished} == FINISHED
    for status in FINISHED:
        assert TRANSITIONS[status] == frozenset()


def test_transitions_follow_queued_running_finished() -> None:
    assert TRANSITIONS[JobStatus.QUEUED] == {JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}
    assert TRANSITIONS[JobStatus.RUNNING] == {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
    assert allowed_sources(JobStatus.COMPLETED) == [JobStatus.RUNNING]
    assert allowed_sources(JobStatus.QUEUED) == []
    assert set(allowed_sources(JobStatus.CANCELLED)) == {JobStatus.QUEUED, JobStatus.RUNNING}


def test_job_refuses_an_id_outside_the_format() -> None:
    with pytest.raises(ValidationError):
        Job(job_id="../x", kind="video", created_at=1, updated_at=1)


# ---------------------------------------------------------------- ids and keys
@pytest.mark.parametrize("kind", ["stereo", "video", "tts", "story"])
def test_new_job_ids_match_the_format(kind: str) -> None:
    job_id = keys.new_job_id(kind)
    assert re.fullmatch(keys.JOB_ID_PATTERN, job_id) and job_id.startswith(f"{kind}-")
    assert keys.new_job_id(kind) != job_id


@pytest.mark.parametrize("job_id", ["..", "../../etc", "a/b-12345678", "x.y-12345678", "short", "A" * 10, ""])
def test_keys_refuse_ids_outside_the_format(job_id: str) -> None:
    with pytest.raises(BadRequest) as refused:
        keys.upload_key(job_id)
    assert refused.value.field == "job_id"


def test_upload_key_round_trip() -> None:
    job_id = keys.new_job_id("stereo")
    assert keys.parse_upload_key(keys.upload_key(job_id)) == (job_id, "source.mp4")
    assert keys.parse_upload_key(f"input/{job_id}/a/b.mp4") is None
    assert keys.parse_upload_key(f"input/{job_id}/../source.mp4") is None


def test_an_upload_key_maps_to_the_one_kind_that_waits_for_it() -> None:
    job_id = keys.new_job_id("stereo")
    found = registry.for_upload_key(keys.upload_key(job_id))
    assert found is not None and found[0].kind.value == "stereo" and found[1] == job_id
    assert registry.for_upload_key(f"input/{job_id}/other.mp4") is None


def test_the_registry_has_one_entry_per_kind_and_its_request_union_covers_them() -> None:
    assert sorted(w.kind.value for w in registry.WORKFLOWS) == sorted(k.value for k in JobKind)
    for workflow in registry.WORKFLOWS:
        assert workflow.request.model_fields["kind"].default == workflow.kind
        assert registry.get(workflow.kind.value) is workflow
