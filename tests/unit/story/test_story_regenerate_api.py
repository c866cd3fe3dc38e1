"""POST /jobs/{job_id}/scenes/{scene}/regenerate through the API handler (moto tables, buckets and state
machines): the story is reopened at its next revision and that revision's execution started; what cannot
be regenerated is refused before anything changes. And POST /jobs/{job_id}/cancel of a story cancels its
unfinished children."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from storyflow import aws, keys, workflows
from storyflow.jobstore import JobStore
from storyflow.models import ChildJob, JobError, JobKind, JobStatus, Progress, StoryScene
from tests.unit.api.conftest import ApiResult, executions, load_event, with_body, with_job_id
from tests.unit.story.conftest import SCENES, STORY, running_story, story_request

Call = Callable[[dict[str, Any]], ApiResult]
TTS_JOB = "tts-20261201-0a1b2c3d4e5f"


def regenerate_event(job_id: str, scene: int | str, body: Any) -> dict[str, Any]:
    """The API Gateway proxy event of POST /jobs/{job_id}/scenes/{scene}/regenerate."""
    event = with_job_id(load_event("api_cancel_job"), job_id)
    path = f"/jobs/{job_id}/scenes/{scene}/regenerate"
    resource = "/jobs/{job_id}/scenes/{scene}/regenerate"
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    event["path"] = path
    event["requestContext"]["path"] = f"/dev{path}"
    event["pathParameters"] = {"job_id": job_id, "scene": str(scene)}
    event["headers"]["Content-Type"] = "application/json"
    event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    return with_body(event, body)


def finished_story(store: JobStore, status: JobStatus = JobStatus.COMPLETED) -> None:
    """Given a 3-scene story planned at revision 0 and finished (completed, or failed with an error)."""
    running_story(store, story_request())
    store.record_plan(
        STORY,
        0,
        scenes=[StoryScene.model_validate(s) for s in SCENES],
        children=[],
        progress=Progress(done=3, total=3),
    )
    if status is JobStatus.COMPLETED:
        store.transition(STORY, status, stage="done", outputs={"final.mp4": "s3://o/jobs/x/final.mp4"})
    elif status is JobStatus.FAILED:
        store.transition(STORY, status, error=JobError(error="TaskFailed", cause="compose"))


def story_executions() -> list[dict[str, Any]]:
    return [e for e in executions() if ":storyflow-story:" in e["executionArn"]]


def execution_input(arn: str) -> Any:
    return json.loads(aws.client("stepfunctions").describe_execution(executionArn=arn)["input"])


# ---------------------------------------------------------------- accepted
@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED])
def test_a_regenerate_reopens_the_story_and_starts_its_next_revision(
    call_api: Call, state_machines: dict[str, str], store: JobStore, status: JobStatus
) -> None:
    # Given a finished 3-scene story
    finished_story(store, status)
    request = store.get(STORY).request

    # When scene 0 is regenerated with new text
    result = call_api(regenerate_event(STORY, 0, {"text": "A fox dreams of the stars."}))

    # Then 202 queued
    assert result.status == 202, result.body
    assert result.body["job_id"] == STORY and result.body["status"] == "queued"
    # ... and one new execution, named {job}-r1, whose input is revision 1 regenerating scene 0
    (execution,) = story_executions()
    assert execution["name"] == f"{STORY}-r1"
    assert execution_input(execution["executionArn"]) == {
        "job_id": STORY,
        "request": request,
        "revision": 1,
        "regenerate": 0,
    }
    # ... the story is queued at revision 1, scene 0's text replaced (its visual prompt kept), the rest kept
    story = store.get(STORY)
    assert story.status is JobStatus.QUEUED and story.revision == 1
    assert story.scenes[0] == StoryScene(
        text="A fox dreams of the stars.", visual_prompt=SCENES[0]["visual_prompt"]
    )
    assert story.scenes[1:] == [StoryScene.model_validate(s) for s in SCENES[1:]]
    assert story.error is None and story.completed_at is None
    assert story.execution_arn == execution["executionArn"]


def test_a_regenerate_can_replace_the_visual_prompt_alone(
    call_api: Call, state_machines: dict[str, str], store: JobStore
) -> None:
    finished_story(store)
    result = call_api(regenerate_event(STORY, 2, {"visual_prompt": "a fox laughing in a river"}))
    assert result.status == 202, result.body
    scene = store.get(STORY).scenes[2]
    assert (scene.text, scene.visual_prompt) == (SCENES[2]["text"], "a fox laughing in a river")
    assert scene.image_uri == SCENES[2]["image_uri"]


def test_an_empty_edit_is_a_new_take_of_the_same_scene(
    call_api: Call, state_machines: dict[str, str], store: JobStore
) -> None:
    finished_story(store)
    result = call_api(regenerate_event(STORY, 1, {}))
    assert result.status == 202, result.body
    assert store.get(STORY).scenes[1] == StoryScene.model_validate(SCENES[1])
    (execution,) = story_executions()
    assert execution_input(execution["executionArn"])["regenerate"] == 1


def test_a_second_regenerate_while_the_first_is_queued_is_409(
    call_api: Call, state_machines: dict[str, str], store: JobStore
) -> None:
    finished_story(store)
    assert call_api(regenerate_event(STORY, 0, {"text": "First."})).status == 202
    second = call_api(regenerate_event(STORY, 1, {"text": "Second."}))
    assert second.status == 409, second.body
    assert [e["name"] for e in story_executions()] == [f"{STORY}-r1"]
    assert store.get(STORY).scenes[1].text == SCENES[1]["text"]


# ---------------------------------------------------------------- refused
@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.CANCELLED])
def test_a_story_that_is_not_finished_or_was_cancelled_is_409(
    call_api: Call, state_machines: dict[str, str], store: JobStore, stack: dict[str, Any], status: JobStatus
) -> None:
    # Given a story in `status` with its scenes recorded
    running_story(store, story_request())
    store.record_plan(
        STORY,
        0,
        scenes=[StoryScene.model_validate(s) for s in SCENES],
        children=[],
        progress=Progress(total=3),
    )
    if status is JobStatus.QUEUED:  # a story reopened and not started yet is queued again
        store.transition(STORY, JobStatus.COMPLETED)
        store.reopen(store.get(STORY), 0, StoryScene(text="x"), "arn:x")
    elif status is JobStatus.CANCELLED:
        store.transition(STORY, JobStatus.CANCELLED)
    before = aws.table(stack["JOBS_TABLE"]).get_item(Key={"job_id": STORY})["Item"]

    # When a scene is regenerated  Then 409 on status; nothing changed, nothing started
    result = call_api(regenerate_event(STORY, 0, {"text": "New."}))
    assert result.status == 409, result.body
    assert result.body["field"] == "status"
    assert aws.table(stack["JOBS_TABLE"]).get_item(Key={"job_id": STORY})["Item"] == before
    assert story_executions() == []


@pytest.mark.parametrize("scene", [3, 49])
def test_a_scene_the_story_does_not_have_is_404(
    call_api: Call, state_machines: dict[str, str], store: JobStore, scene: int
) -> None:
    finished_story(store)
    result = call_api(regenerate_event(STORY, scene, {"text": "New."}))
    assert result.status == 404, result.body
    assert result.body["field"] == "scene"
    assert store.get(STORY).revision == 0 and store.get(STORY).status is JobStatus.COMPLETED
    assert story_executions() == []


def test_an_unknown_job_is_404(call_api: Call, state_machines: dict[str, str]) -> None:
    result = call_api(regenerate_event(STORY, 0, {}))
    assert result.status == 404, result.body
    assert story_executions() == []


def test_a_job_that_is_not_a_story_is_400(
    call_api: Call, state_machines: dict[str, str], store: JobStore
) -> None:
    # Given a completed tts job
    store.create(JobKind.TTS, TTS_JOB, {"kind": "tts", "text": "hi"})
    store.transition(TTS_JOB, JobStatus.RUNNING)
    store.transition(TTS_JOB, JobStatus.COMPLETED)
    result = call_api(regenerate_event(TTS_JOB, 0, {"text": "New."}))
    assert result.status == 400, result.body
    assert result.body["field"] == "job_id" and "story" in result.body["message"]
    assert store.get(TTS_JOB).status is JobStatus.COMPLETED
    assert executions() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"visual_prompt": ""}, "visual_prompt"),
        ({"text": "x" * 4001}, "text"),
        ({"voice": "af_bella"}, "voice"),
        ({"text": "ok", "image_uri": "s3://storyflow-input/a.png"}, "image_uri"),
    ],
    ids=["empty-text", "empty-visual-prompt", "long-text", "unknown-field", "image-uri-not-editable"],
)
def test_a_bad_edit_is_400_naming_the_field_and_changes_nothing(
    call_api: Call, state_machines: dict[str, str], store: JobStore, body: dict[str, Any], field: str
) -> None:
    finished_story(store)
    result = call_api(regenerate_event(STORY, 0, body))
    assert result.status == 400, result.body
    assert result.body["field"] == field, result.body
    assert store.get(STORY).revision == 0 and store.get(STORY).status is JobStatus.COMPLETED
    assert story_executions() == []


@pytest.mark.parametrize(
    ("scene", "body", "field"),
    [(-1, {}, "scene"), (50, {}, "scene"), ("one", {}, "scene"), (0, "not json", "body"), (0, [1], "body")],
)
def test_a_bad_scene_index_or_body_is_400(
    call_api: Call, state_machines: dict[str, str], store: JobStore, scene: int | str, body: Any, field: str
) -> None:
    finished_story(store)
    result = call_api(regenerate_event(STORY, scene, body))
    assert result.status == 400, result.body
    assert result.body["field"] == field, result.body
    assert store.get(STORY).revision == 0
    assert story_executions() == []


# ---------------------------------------------------------------- the execution cannot start
def test_a_failing_start_marks_the_story_failed_and_answers_503_and_it_can_be_regenerated_again(
    call_api: Call, state_machines: dict[str, str], store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a finished story and a story state machine ARN that does not exist
    finished_story(store)
    monkeypatch.setenv("STORY_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:gone")

    # When a scene is regenerated
    result = call_api(regenerate_event(STORY, 1, {"text": "It leaps higher."}))

    # Then 503, and the story is not left queued with nothing to run it: failed, StartExecutionFailed
    assert result.status == 503, result.body
    story = store.get(STORY)
    assert story.status is JobStatus.FAILED and story.revision == 1
    assert story.error is not None and story.error.error == "StartExecutionFailed" and story.error.cause
    assert story_executions() == []

    # When the machine is back and the scene is regenerated again  Then revision 2 starts
    monkeypatch.setenv("STORY_STATE_MACHINE_ARN", state_machines["story"])
    again = call_api(regenerate_event(STORY, 1, {"text": "It leaps higher."}))
    assert again.status == 202, again.body
    assert [e["name"] for e in story_executions()] == [f"{STORY}-r2"]
    assert store.get(STORY).revision == 2 and store.get(STORY).status is JobStatus.QUEUED


# ---------------------------------------------------------------- cancelling a story
def test_cancelling_a_story_cancels_and_stops_its_unfinished_children(
    call_api: Call, state_machines: dict[str, str], store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running story whose scene 0 is done, scene 1 running (executions recorded), scene 2 queued
    store.create(JobKind.STORY, STORY, story_request())
    story_execution = workflows.execution_arn(state_machines["story"], STORY)
    store.transition(STORY, JobStatus.RUNNING, execution_arn=story_execution)
    listed: list[ChildJob] = []
    for scene in range(3):
        for kind in ("tts", "video"):
            job_id = keys.derived_job_id(kind, STORY, f"scene-{scene:02d}-r0")
            store.create(JobKind(kind), job_id, {"kind": kind}, parent_id=STORY)
            listed.append(ChildJob(kind=JobKind(kind), job_id=job_id, scene=scene))
    done, running, queued = listed[0:2], listed[2:4], listed[4:6]
    for child in done:
        store.transition(child.job_id, JobStatus.RUNNING)
        store.transition(child.job_id, JobStatus.COMPLETED)
    for child in running:
        store.transition(
            child.job_id,
            JobStatus.RUNNING,
            execution_arn=workflows.execution_arn(state_machines[child.kind.value], child.job_id),
        )
    store.record_plan(
        STORY,
        0,
        scenes=[StoryScene.model_validate(s) for s in SCENES],
        children=listed,
        progress=Progress(total=3),
    )
    stopped: list[str] = []
    monkeypatch.setattr(workflows, "stop", lambda execution, cause: stopped.append(execution))

    # When the story is cancelled through the API
    result = call_api(with_job_id(load_event("api_cancel_job"), STORY))

    # Then the story and its unfinished children are cancelled; the finished ones stay completed
    assert result.status == 200, result.body
    assert result.body["status"] == "cancelled"
    assert store.get(STORY).status is JobStatus.CANCELLED
    assert [store.get(c.job_id).status for c in listed] == [JobStatus.COMPLETED] * 2 + [
        JobStatus.CANCELLED
    ] * 4
    # ... and each one's execution is stopped (the queued ones' by the name their start would use)
    expected = [story_execution] + [
        workflows.execution_arn(state_machines[c.kind.value], c.job_id) for c in running + queued
    ]
    assert sorted(stopped) == sorted(expected)
