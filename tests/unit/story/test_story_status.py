"""job_status for a story (moto tables from template.yaml): a failed or cancelled child fails the story
with the child's error, naming the scene, the kind and the job id; when a story fails, its unfinished
children are cancelled and its finished ones keep their status (storyflow.children)."""

from __future__ import annotations

from typing import Any

import pytest

from storyflow import children, job_status, keys
from storyflow.jobstore import JobStore
from storyflow.models import ChildJob, Job, JobError, JobKind, JobStatus, Progress, StoryScene
from storyflow.settings import Settings
from tests.support.functions import FakeContext, load_handler
from tests.unit.story.conftest import SCENES, STORY, running_story, story_request

PLAN_FAILURE = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "The Map failed"}
OWN_FAILURE = {"Error": "States.Timeout", "Cause": "compose took too long"}


def ids(scene: int) -> dict[str, str]:
    task = f"scene-{scene:02d}-r0"
    return {kind: keys.derived_job_id(kind, STORY, task) for kind in ("tts", "video")}


STEREO = keys.derived_job_id("stereo", STORY, "r0")


def story_with_children(store: JobStore, *, stereo: bool = False) -> list[ChildJob]:
    """Given a running story with a tts and a video child per scene (all queued), recorded as its plan."""
    running_story(store, story_request())
    listed = []
    for scene in range(len(SCENES)):
        for kind, job_id in ids(scene).items():
            store.create(JobKind(kind), job_id, {"kind": kind}, parent_id=STORY)
            listed.append(ChildJob(kind=JobKind(kind), job_id=job_id, scene=scene))
    if stereo:
        store.create(JobKind.STEREO, STEREO, {"kind": "stereo"}, parent_id=STORY)
        listed.append(ChildJob(kind=JobKind.STEREO, job_id=STEREO))
    store.record_plan(
        STORY,
        0,
        scenes=[StoryScene.model_validate(s) for s in SCENES],
        children=listed,
        progress=Progress(total=len(SCENES)),
    )
    return listed


def end(store: JobStore, job_id: str, status: JobStatus, error: JobError | None = None) -> None:
    """A child's own workflow ends it (queued → running → status; cancelled straight from queued)."""
    if status is not JobStatus.CANCELLED:
        store.transition(job_id, JobStatus.RUNNING)
    if status is not JobStatus.RUNNING:
        store.transition(job_id, status, error=error)


def fail_story(failure: dict[str, Any] = PLAN_FAILURE) -> Job:
    """When MarkFailed invokes the job_status Lambda for the story  Then the story as it is now."""
    result = load_handler("job_status")(
        {"job_id": STORY, "status": "failed", "failure": failure}, FakeContext()
    )
    assert result == {"status": "failed"}
    return JobStore("JobsTable").get(STORY)


def statuses(store: JobStore) -> dict[str, JobStatus]:
    return {
        job_id: store.get(job_id).status for scene in range(len(SCENES)) for job_id in ids(scene).values()
    }


# ---------------------------------------------------------------- the story's error
def test_a_failed_child_fails_the_story_with_its_error_naming_scene_kind_and_job(
    store: JobStore, stack: dict[str, Any]
) -> None:
    # Given scene 0 done, and scene 1's video failed with a typed error
    story_with_children(store)
    for job_id in ids(0).values():
        end(store, job_id, JobStatus.COMPLETED)
    video = ids(1)["video"]
    end(store, video, JobStatus.FAILED, JobError(error="ModelOutOfMemory", cause="CUDA out of memory"))

    # When the story's Map fails and MarkFailed runs
    story = fail_story()

    # Then the story is failed with the child's error name; the cause names the scene, kind and job id
    assert story.status is JobStatus.FAILED
    assert story.error == JobError(
        error="ModelOutOfMemory", cause=f"scene 1: video job {video} failed: CUDA out of memory"
    )


def test_the_first_failed_child_in_scene_order_is_the_one_reported(
    store: JobStore, stack: dict[str, Any]
) -> None:
    story_with_children(store)
    end(store, ids(2)["tts"], JobStatus.FAILED, JobError(error="Later", cause="scene 2"))
    end(store, ids(1)["tts"], JobStatus.FAILED, JobError(error="Earlier", cause="scene 1"))
    story = fail_story()
    assert story.error is not None and story.error.error == "Earlier"
    assert story.error.cause.startswith(f"scene 1: tts job {ids(1)['tts']} failed")


def test_a_failed_child_without_an_error_is_child_job_failed(store: JobStore, stack: dict[str, Any]) -> None:
    story_with_children(store)
    tts = ids(0)["tts"]
    end(store, tts, JobStatus.FAILED)
    story = fail_story()
    assert story.error == JobError(
        error="ChildJobFailed", cause=f"scene 0: tts job {tts} failed: ChildJobFailed"
    )


def test_a_failed_child_with_an_error_but_no_cause_names_the_error(
    store: JobStore, stack: dict[str, Any]
) -> None:
    story_with_children(store)
    tts = ids(0)["tts"]
    end(store, tts, JobStatus.FAILED, JobError(error="VoiceMissing"))
    story = fail_story()
    assert story.error == JobError(error="VoiceMissing", cause=f"scene 0: tts job {tts} failed: VoiceMissing")


def test_a_cancelled_child_fails_the_story_as_child_job_cancelled(
    store: JobStore, stack: dict[str, Any]
) -> None:
    # Given scene 2's tts cancelled (someone cancelled the child itself)
    story_with_children(store)
    tts = ids(2)["tts"]
    end(store, tts, JobStatus.CANCELLED)
    # When the story fails  Then ChildJobCancelled naming the scene, kind and job
    story = fail_story()
    assert story.error == JobError(error="ChildJobCancelled", cause=f"scene 2: tts job {tts} was cancelled")


def test_a_failed_stereo_child_names_no_scene(store: JobStore, stack: dict[str, Any]) -> None:
    # Given every scene done and the story's stereo child failed
    story_with_children(store, stereo=True)
    for scene in range(len(SCENES)):
        for job_id in ids(scene).values():
            end(store, job_id, JobStatus.COMPLETED)
    end(store, STEREO, JobStatus.FAILED, JobError(error="NotAVideo", cause="empty source"))
    story = fail_story({"Error": "ChildJobFailed", "Cause": STEREO})
    assert story.error == JobError(error="NotAVideo", cause=f"stereo job {STEREO} failed: empty source")


def test_a_huge_child_cause_is_clipped(store: JobStore, stack: dict[str, Any]) -> None:
    story_with_children(store)
    end(store, ids(0)["video"], JobStatus.FAILED, JobError(error="Boom", cause="x" * 10_000))
    story = fail_story()
    assert story.error is not None and len(story.error.cause) == job_status.MAX_CAUSE


def test_a_story_without_failed_children_gets_its_own_failure(store: JobStore, stack: dict[str, Any]) -> None:
    # Given every child completed (compose failed afterwards)
    story_with_children(store)
    for scene in range(len(SCENES)):
        for job_id in ids(scene).values():
            end(store, job_id, JobStatus.COMPLETED)
    # When the story fails  Then the normal description of its own failure
    story = fail_story(OWN_FAILURE)
    assert story.error == JobError(error="States.Timeout", cause="compose took too long")
    assert job_status.failed_child(store, STORY) is None


def test_a_story_without_children_gets_its_own_failure(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a story that failed before its plan recorded any child (e.g. the scene writer failed)
    running_story(store, story_request())
    assert job_status.failed_child(store, STORY) is None
    cause = '{"errorType": "SceneWriterFailed", "errorMessage": "the model did not call write_scenes"}'
    story = fail_story({"Error": "SceneWriterFailed", "Cause": cause})
    assert story.error == JobError(error="SceneWriterFailed", cause="the model did not call write_scenes")


def test_a_listed_child_missing_from_the_table_is_skipped(store: JobStore, stack: dict[str, Any]) -> None:
    listed = story_with_children(store)
    store.table.delete_item(Key={"job_id": listed[0].job_id})
    end(store, ids(1)["video"], JobStatus.FAILED, JobError(error="E", cause="c"))
    error = job_status.failed_child(store, STORY)
    assert error is not None and error.error == "E"


# ---------------------------------------------------------------- the children of a failed story
def test_when_a_story_fails_its_unfinished_children_are_cancelled_and_finished_ones_kept(
    store: JobStore, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given scene 0 done, scene 1's video failed and its tts running, scene 2 not started
    story_with_children(store, stereo=True)
    for job_id in ids(0).values():
        end(store, job_id, JobStatus.COMPLETED)
    end(store, ids(1)["video"], JobStatus.FAILED, JobError(error="TaskFailed", cause="gpu"))
    end(store, ids(1)["tts"], JobStatus.RUNNING)
    published: list[Job] = []
    monkeypatch.setattr(job_status, "publish", lambda job, settings: published.append(job))

    # When the story fails
    job = job_status.apply(
        job_status.StatusUpdate.model_validate(
            {"job_id": STORY, "status": "failed", "failure": PLAN_FAILURE}
        ),
        Settings.from_env(),
    )

    # Then the running and queued children are cancelled; the completed and the failed ones keep their status
    assert job is not None and job.status is JobStatus.FAILED
    assert statuses(store) == {
        ids(0)["tts"]: JobStatus.COMPLETED,
        ids(0)["video"]: JobStatus.COMPLETED,
        ids(1)["tts"]: JobStatus.CANCELLED,
        ids(1)["video"]: JobStatus.FAILED,
        ids(2)["tts"]: JobStatus.CANCELLED,
        ids(2)["video"]: JobStatus.CANCELLED,
    }
    assert store.get(STEREO).status is JobStatus.CANCELLED
    # ... the story's error is still the failed child's (not ChildJobCancelled from those just cancelled)
    assert job.error is not None and job.error.error == "TaskFailed"
    assert store.get(ids(1)["video"]).error == JobError(error="TaskFailed", cause="gpu")
    # ... and the story's failure is published once, with that error
    assert [(j.job_id, j.status, j.error) for j in published] == [(STORY, JobStatus.FAILED, job.error)]


def test_a_failing_story_reads_its_children_once(
    store: JobStore, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a story whose scene 1 video failed and whose other children are still queued
    story_with_children(store)
    end(store, ids(1)["video"], JobStatus.FAILED, JobError(error="TaskFailed", cause="gpu"))
    reads: list[list[str]] = []
    real = JobStore.get_many

    def get_many(self: JobStore, job_ids: list[str]) -> dict[str, Job]:
        reads.append(list(job_ids))
        return real(self, job_ids)

    monkeypatch.setattr(JobStore, "get_many", get_many)
    monkeypatch.setattr(job_status, "publish", lambda job, settings: None)
    # When the story fails
    job = job_status.apply(
        job_status.StatusUpdate.model_validate(
            {"job_id": STORY, "status": "failed", "failure": PLAN_FAILURE}
        ),
        Settings.from_env(),
    )
    # Then one read of its children gave both the story's error and the children to cancel
    assert job is not None and job.error is not None and job.error.error == "TaskFailed"
    assert len(reads) == 1 and set(reads[0]) == set(statuses(store))
    assert statuses(store)[ids(0)["tts"]] is JobStatus.CANCELLED


def test_a_completed_story_cancels_nothing(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a running story with one child still queued (never the case in practice, but kept)
    story_with_children(store)
    job = job_status.apply(
        job_status.StatusUpdate.model_validate({"job_id": STORY, "status": "completed"}), Settings.from_env()
    )
    assert job is not None and job.status is JobStatus.COMPLETED
    assert set(statuses(store).values()) == {JobStatus.QUEUED}


def test_a_story_cancelled_meanwhile_is_left_as_it_is(store: JobStore, stack: dict[str, Any]) -> None:
    # Given a story the user cancelled while its failure was on its way
    story_with_children(store)
    store.transition(STORY, JobStatus.CANCELLED)
    result = load_handler("job_status")(
        {"job_id": STORY, "status": "failed", "failure": PLAN_FAILURE}, FakeContext()
    )
    assert result == {"status": None}
    assert store.get(STORY).status is JobStatus.CANCELLED and store.get(STORY).error is None


# ---------------------------------------------------------------- children.cancel_unfinished
def test_cancel_unfinished_stops_each_cancelled_child_and_returns_their_ids(
    store: JobStore, stack: dict[str, Any]
) -> None:
    story_with_children(store)
    end(store, ids(0)["tts"], JobStatus.COMPLETED)
    end(store, ids(0)["video"], JobStatus.RUNNING)
    stopped: list[tuple[str, JobStatus]] = []

    cancelled = children.cancel_unfinished(
        store, store.get(STORY), lambda child: stopped.append((child.job_id, child.status))
    )

    unfinished = [ids(0)["video"], *ids(1).values(), *ids(2).values()]
    assert sorted(cancelled) == sorted(unfinished)
    # ... each stopped once, after it was marked cancelled
    assert sorted(stopped) == sorted((job_id, JobStatus.CANCELLED) for job_id in unfinished)
    assert store.get(ids(0)["tts"]).status is JobStatus.COMPLETED


def test_cancel_unfinished_of_a_parent_without_children_does_nothing(
    store: JobStore, stack: dict[str, Any]
) -> None:
    running_story(store, story_request())
    assert children.cancel_unfinished(store, store.get(STORY), lambda child: pytest.fail("stopped")) == []


def test_a_child_that_finished_meanwhile_keeps_its_status(
    store: JobStore, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a child read as running that completes before its cancel is written
    story_with_children(store)
    racing = ids(0)["tts"]
    end(store, racing, JobStatus.RUNNING)
    read = store.get_many([c.job_id for c in store.get(STORY).children])
    end_now = store.transition(racing, JobStatus.COMPLETED)
    monkeypatch.setattr(store, "get_many", lambda job_ids: read)
    stopped: list[str] = []

    # When the story's unfinished children are cancelled
    cancelled = children.cancel_unfinished(
        store, store.get(STORY), lambda child: stopped.append(child.job_id)
    )

    # Then the one that finished keeps completed and is neither listed nor stopped
    assert end_now.status is JobStatus.COMPLETED and store.get(racing).status is JobStatus.COMPLETED
    assert racing not in cancelled and racing not in stopped
    assert len(cancelled) == 2 * len(SCENES) - 1
