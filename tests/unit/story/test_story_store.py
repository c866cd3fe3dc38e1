"""JobStore's story calls on the template's Jobs table (moto): a child created with its parent, batch reads,
a plan's record (only while the story runs that revision) and a reopen (the one way back from a finished
status: only a completed or failed story, at the revision read, once)."""

from __future__ import annotations

from typing import Any

import pytest

from storyflow import aws
from storyflow.errors import BadRequest, Conflict, NotFound
from storyflow.jobstore import MAX_BATCH_GET, JobStore
from storyflow.models import ChildJob, Job, JobError, JobKind, JobStatus, Progress, StoryScene
from tests.unit.story.conftest import SCENES, STORY, story_request

CHILD = "tts-0123456789abcdef0123456789abcdef"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:storyflow-story:" + STORY + "-r1"
PLANNED = [StoryScene.model_validate(s) for s in SCENES]
CHILDREN = [ChildJob(kind=JobKind.TTS, job_id=CHILD, scene=0)]


def raw_item(stack: dict[str, Any], job_id: str = STORY) -> dict[str, Any]:
    item: dict[str, Any] = aws.table(stack["JOBS_TABLE"]).get_item(
        Key={"job_id": job_id}, ConsistentRead=True
    )["Item"]
    return item


def story_in(store: JobStore, status: JobStatus, *, planned: bool = True) -> Job:
    """Given a story in `status` (reached the way its workflow does), its plan recorded."""
    store.create(JobKind.STORY, STORY, story_request())
    if status is JobStatus.CANCELLED:
        store.transition(STORY, JobStatus.CANCELLED)
        return store.get(STORY)
    if status is not JobStatus.QUEUED:
        store.transition(STORY, JobStatus.RUNNING, stage="composing")
    if planned:
        store.record_plan(STORY, 0, scenes=PLANNED, children=CHILDREN, progress=Progress(done=0, total=3))
    if status is JobStatus.FAILED:
        store.transition(STORY, JobStatus.FAILED, error=JobError(error="TaskFailed", cause="compose died"))
    elif status is JobStatus.COMPLETED:
        store.transition(STORY, JobStatus.COMPLETED, stage="done", outputs={"final.mp4": "s3://o/f.mp4"})
    return store.get(STORY)


# ---------------------------------------------------------------- create with a parent
def test_a_child_is_created_with_its_parent(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a story  When a child is created with parent_id
    store.create(JobKind.STORY, STORY, story_request())
    child = store.create(JobKind.TTS, CHILD, {"kind": "tts", "text": "hi"}, parent_id=STORY)
    # Then it reads back with its parent, queued; the story has none
    assert child.parent_id == STORY
    assert store.get(CHILD).parent_id == STORY and store.get(CHILD).status is JobStatus.QUEUED
    assert raw_item(stack, CHILD)["parent_id"] == STORY
    assert "parent_id" not in raw_item(stack)  # no parent: no attribute


def test_a_childs_id_is_created_once(store: JobStore) -> None:
    store.create(JobKind.TTS, CHILD, {"first": True}, parent_id=STORY)
    with pytest.raises(Conflict):
        store.create(JobKind.TTS, CHILD, {"first": False}, parent_id="story-20261201-ffffffffffff")
    assert store.get(CHILD).parent_id == STORY and store.get(CHILD).request == {"first": True}


def test_a_malformed_parent_id_is_refused(store: JobStore) -> None:
    with pytest.raises(ValueError, match="parent_id"):
        store.create(JobKind.TTS, CHILD, {}, parent_id="../escape")


# ---------------------------------------------------------------- get_many
def test_get_many_returns_the_jobs_that_exist_by_id(store: JobStore) -> None:
    # Given two jobs
    ids = ["tts-20261201-000000000001", "video-20261201-000000000002"]
    store.create(JobKind.TTS, ids[0], {"kind": "tts"}, parent_id=STORY)
    store.create(JobKind.VIDEO, ids[1], {"kind": "video"})
    missing = "tts-20261201-0000000000ff"
    # When both, a missing id and a repeat are asked for
    found = store.get_many([ids[0], missing, ids[1], ids[0]])
    # Then the two, by id, as get reads them; the missing one is absent
    assert set(found) == set(ids)
    for job_id in ids:
        assert found[job_id] == store.get(job_id)
    assert found[ids[0]].parent_id == STORY


def test_get_many_of_nothing_is_empty(store: JobStore) -> None:
    assert store.get_many([]) == {}
    assert store.get_many(["tts-20261201-0000000000ff"]) == {}


def test_get_many_reads_more_than_one_batch(store: JobStore) -> None:
    # Given more jobs than one BatchGetItem takes (100)
    ids = [f"tts-20261201-{n:012x}" for n in range(MAX_BATCH_GET + 30)]
    for job_id in ids:
        store.create(JobKind.TTS, job_id, {"n": job_id})
    missing = [f"video-20261201-{n:012x}" for n in range(15)]
    # When all of them are asked for, with ids that do not exist in between, and some twice
    found = store.get_many(missing[:5] + ids[:70] + missing[5:] + ids[70:] + ids[:10])
    # Then every existing job, none of the missing
    assert set(found) == set(ids)
    assert all(found[job_id].request == {"n": job_id} for job_id in ids)


def test_get_many_refuses_a_malformed_id(store: JobStore) -> None:
    with pytest.raises(BadRequest) as refused:
        store.get_many(["../x"])
    assert refused.value.field == "job_id"


# ---------------------------------------------------------------- record_plan
@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_record_plan_writes_scenes_children_and_progress(
    store: JobStore, stack: dict[str, Any], status: JobStatus
) -> None:
    # Given a queued or running story  When its revision 0 plan is recorded
    story_in(store, status)
    # Then the story has its scenes, children and progress, and its status is unchanged
    story = store.get(STORY)
    assert story.scenes == PLANNED and story.children == CHILDREN
    assert story.progress == Progress(done=0, total=3)
    assert story.status is status
    assert raw_item(stack)["scenes"][1] == {"text": "One morning, it leaps."}  # no null fields stored


def test_record_plan_replaces_the_previous_record(store: JobStore) -> None:
    story_in(store, JobStatus.RUNNING)
    other = [ChildJob(kind=JobKind.VIDEO, job_id="video-0123456789abcdef0123456789abcdef", scene=2)]
    store.record_plan(STORY, 0, scenes=PLANNED[:1], children=other, progress=Progress(done=1, total=1))
    story = store.get(STORY)
    assert (story.scenes, story.children, story.progress) == (PLANNED[:1], other, Progress(done=1, total=1))


@pytest.mark.parametrize("status", [JobStatus.CANCELLED, JobStatus.COMPLETED, JobStatus.FAILED])
def test_record_plan_of_a_finished_story_is_a_conflict(
    store: JobStore, stack: dict[str, Any], status: JobStatus
) -> None:
    # Given a story that finished (cancelled before its plan wrote, or done)
    story_in(store, status, planned=False)
    before = raw_item(stack)
    # When a plan is recorded  Then Conflict naming its status, and nothing is written
    with pytest.raises(Conflict) as refused:
        store.record_plan(STORY, 0, scenes=PLANNED, children=CHILDREN, progress=Progress(total=3))
    assert status.value in refused.value.message and refused.value.field == "status"
    assert raw_item(stack) == before


def test_record_plan_of_another_revision_is_a_conflict(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a running story at revision 0
    story_in(store, JobStatus.RUNNING)
    before = raw_item(stack)
    # When revision 1's plan is recorded  Then Conflict, nothing written
    with pytest.raises(Conflict, match="revision 0"):
        store.record_plan(STORY, 1, scenes=PLANNED, children=[], progress=Progress(total=3))
    assert raw_item(stack) == before


def test_record_plan_of_a_stale_revision_after_a_reopen_is_a_conflict(store: JobStore) -> None:
    # Given a story reopened at revision 1 (queued again)
    story = story_in(store, JobStatus.COMPLETED)
    store.reopen(story, 0, StoryScene(text="New."), EXECUTION)
    # When revision 0's plan (a late retry) is recorded  Then Conflict; revision 1's is accepted
    with pytest.raises(Conflict, match="revision 1"):
        store.record_plan(STORY, 0, scenes=PLANNED, children=[], progress=Progress(total=3))
    store.record_plan(STORY, 1, scenes=PLANNED, children=[], progress=Progress(done=2, total=3))
    assert store.get(STORY).progress == Progress(done=2, total=3)


def test_record_plan_of_a_missing_story_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.record_plan(STORY, 0, scenes=PLANNED, children=[], progress=Progress(total=3))


# ---------------------------------------------------------------- reopen
@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED])
def test_reopen_queues_a_finished_story_at_the_next_revision(
    store: JobStore, stack: dict[str, Any], status: JobStatus
) -> None:
    # Given a completed or failed story (with a stage, a completion time, and for failed an error)
    story = story_in(store, status)
    assert story.completed_at is not None and story.stage is not None
    replacement = StoryScene(text="It leaps higher.", visual_prompt="a fox over a canyon")

    # When scene 1 is reopened
    reopened = store.reopen(story, 1, replacement, EXECUTION)

    # Then it is queued at revision 1 with scene 1 replaced and the others kept, the new execution recorded
    assert reopened.status is JobStatus.QUEUED and reopened.revision == 1
    assert reopened.scenes == [PLANNED[0], replacement, PLANNED[2]]
    assert reopened.execution_arn == EXECUTION
    # ... and no error, completion time or stage left (it is not finished anymore)
    item = raw_item(stack)
    assert {"error", "completed_at", "stage"}.isdisjoint(item), item
    assert reopened.error is None and reopened.completed_at is None and reopened.stage is None
    assert store.get(STORY) == reopened
    # ... what else it had stays: its request, children and outputs
    assert reopened.request == story.request and reopened.children == CHILDREN
    assert reopened.outputs == story.outputs


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLED])
def test_reopen_of_a_story_that_is_not_completed_or_failed_is_a_conflict(
    store: JobStore, stack: dict[str, Any], status: JobStatus
) -> None:
    story = story_in(store, status, planned=status is not JobStatus.CANCELLED)
    before = raw_item(stack)
    with pytest.raises(Conflict) as refused:
        store.reopen(story, 0, StoryScene(text="New."), EXECUTION)
    assert status.value in refused.value.message and refused.value.field == "status"
    assert raw_item(stack) == before


def test_reopen_of_another_kind_is_a_conflict(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a completed tts job (it has no scenes to regenerate)
    store.create(JobKind.TTS, CHILD, {"kind": "tts"})
    store.transition(CHILD, JobStatus.RUNNING)
    job = store.transition(CHILD, JobStatus.COMPLETED)
    before = raw_item(stack, CHILD)
    with pytest.raises(Conflict):
        store.reopen(job, 0, StoryScene(text="New."), EXECUTION)
    assert raw_item(stack, CHILD) == before


def test_two_reopens_of_the_same_revision_the_second_is_a_conflict(store: JobStore) -> None:
    # Given a completed story read once by two regenerates
    story = story_in(store, JobStatus.COMPLETED)
    first = store.reopen(story, 0, StoryScene(text="First."), EXECUTION)
    # ... the first reopened it, and its revision 1 ran to completion meanwhile
    store.transition(STORY, JobStatus.RUNNING)
    store.transition(STORY, JobStatus.COMPLETED)
    # When the second reopens from what it read (revision 0)  Then Conflict: the revision moved on
    with pytest.raises(Conflict, match="revision 1"):
        store.reopen(story, 0, StoryScene(text="Second."), EXECUTION)
    assert store.get(STORY).scenes[0].text == "First." and store.get(STORY).revision == 1
    # ... and a reopen from the current read goes to revision 2
    again = store.reopen(store.get(STORY), 2, StoryScene(text="Third."), EXECUTION + "x")
    assert again.revision == 2 and again.scenes[0].text == "First." and again.scenes[2].text == "Third."
    assert first.revision == 1


def test_two_reopens_back_to_back_the_second_is_a_conflict(store: JobStore) -> None:
    story = story_in(store, JobStatus.FAILED)
    store.reopen(story, 0, StoryScene(text="First."), EXECUTION)
    with pytest.raises(Conflict, match="queued"):
        store.reopen(story, 1, StoryScene(text="Second."), EXECUTION)
    assert store.get(STORY).scenes[1] == PLANNED[1]


def test_reopen_of_a_missing_story_is_not_found(store: JobStore) -> None:
    story = Job(job_id=STORY, kind=JobKind.STORY, created_at=1, updated_at=1, status=JobStatus.COMPLETED)
    with pytest.raises(NotFound):
        store.reopen(story, 0, StoryScene(text="x"), EXECUTION)
