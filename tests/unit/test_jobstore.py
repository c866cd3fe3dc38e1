"""JobStore on the template's Jobs table: conditional create and transitions, GSI listing, atomic progress."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from storyflow import aws
from storyflow.errors import BadRequest, Conflict, NotFound
from storyflow.jobstore import MAX_PAGE, JobStore, encode_page_token
from storyflow.models import FINISHED, TRANSITIONS, JobError, JobKind, JobStatus
from tests.support.jobs import set_progress_total
from tests.unit.api.boto_cache import shared_botocore_loader  # noqa: F401 (session fixture)
from tests.unit.api.moto_stack import _module_account, module_lived_stack  # noqa: F401 (module-lived moto account)

JOB = "stereo-20261123-0123456789ab"
LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in sorted(targets)]
ILLEGAL = [(s, t) for s, t in itertools.product(JobStatus, JobStatus) if t not in TRANSITIONS[s]]
# The shortest way to reach each status from queued.
PATH = {
    JobStatus.QUEUED: [],
    JobStatus.RUNNING: [JobStatus.RUNNING],
    JobStatus.COMPLETED: [JobStatus.RUNNING, JobStatus.COMPLETED],
    JobStatus.FAILED: [JobStatus.RUNNING, JobStatus.FAILED],
    JobStatus.CANCELLED: [JobStatus.CANCELLED],
}


@pytest.fixture
def store(stack: dict[str, Any]) -> JobStore:
    return JobStore(stack["JOBS_TABLE"])


def job_in(store: JobStore, status: JobStatus, job_id: str = JOB) -> str:
    store.create(JobKind.STEREO, job_id, {"kind": "stereo"})
    for step in PATH[status]:
        store.transition(job_id, step)
    return job_id


def raw_item(stack: dict[str, Any], job_id: str = JOB) -> dict[str, Any]:
    item: dict[str, Any] = aws.table(stack["JOBS_TABLE"]).get_item(Key={"job_id": job_id})["Item"]
    return item


# ---------------------------------------------------------------- create / get
def test_create_writes_a_queued_job_with_zero_progress(store: JobStore, stack: dict[str, Any]) -> None:
    # Given an empty table  When a job is created
    job = store.create(JobKind.VIDEO, JOB, {"kind": "video", "guidance": 7.5})

    # Then it reads back queued, with its request (floats survive), no completion time
    assert job.status is JobStatus.QUEUED
    again = store.get(JOB)
    assert again == job
    assert again.request == {"kind": "video", "guidance": 7.5}
    assert again.progress.done == 0 and again.progress.total == 0
    assert "completed_at" not in raw_item(stack)  # sparse: absent from the completed-at index


def test_create_is_conditional(store: JobStore) -> None:
    # Given an existing job
    store.create(JobKind.VIDEO, JOB, {"first": True})

    # When the same id is created again  Then Conflict, and the first request is kept
    with pytest.raises(Conflict) as refused:
        store.create(JobKind.VIDEO, JOB, {"first": False})
    assert refused.value.field == "job_id"
    assert store.get(JOB).request == {"first": True}


def test_get_unknown_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.get("video-20261123-ffffffffffff")


@pytest.mark.parametrize("job_id", ["../x", "a/b-12345678", "short", "Video-20261123-0123456789ab"])
def test_ids_outside_the_format_never_reach_dynamodb(store: JobStore, job_id: str) -> None:
    # Given a malformed id  When used anywhere  Then BadRequest on job_id
    for call in (
        lambda: store.create(JobKind.VIDEO, job_id, {}),
        lambda: store.get(job_id),
        lambda: store.transition(job_id, JobStatus.RUNNING),
        lambda: store.add_progress(job_id),
    ):
        with pytest.raises(BadRequest) as refused:
            call()
        assert refused.value.field == "job_id"


# ---------------------------------------------------------------- the status machine
@pytest.mark.parametrize(("source", "target"), LEGAL, ids=lambda s: s.value)
def test_every_legal_transition_is_applied(store: JobStore, source: JobStatus, target: JobStatus) -> None:
    # Given a job in `source`
    job_in(store, source)

    # When it moves to `target`
    job = store.transition(JOB, target, stage="x")

    # Then it is there; a finished status carries its completion time
    assert job.status is target and store.get(JOB).status is target
    assert job.stage == "x"
    assert (job.completed_at is not None) == (target in FINISHED)


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: s.value)
def test_every_illegal_transition_is_a_conflict_and_changes_nothing(
    store: JobStore, stack: dict[str, Any], source: JobStatus, target: JobStatus
) -> None:
    # Given a job in `source`
    job_in(store, source)
    before = raw_item(stack)

    # When it is asked to become `target`  Then Conflict naming both, and the item is untouched
    with pytest.raises(Conflict) as refused:
        store.transition(JOB, target, stage="never", error=JobError(error="X"))
    assert source.value in refused.value.message and target.value in refused.value.message
    assert raw_item(stack) == before


def test_transition_of_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.transition("video-20261123-ffffffffffff", JobStatus.RUNNING)


def test_a_lost_race_is_a_conflict(store: JobStore) -> None:
    # Given a running job that two writers try to finish
    job_in(store, JobStatus.RUNNING)
    store.transition(JOB, JobStatus.COMPLETED, outputs={"final": "s3://b/k.mp4"})

    # When the slower writer marks it failed  Then its conditional write fails: Conflict
    with pytest.raises(Conflict):
        store.transition(JOB, JobStatus.FAILED, error=JobError(error="Late"))
    assert store.get(JOB).status is JobStatus.COMPLETED


def test_transition_records_outputs_error_and_execution(store: JobStore) -> None:
    # Given a queued job
    job_in(store, JobStatus.QUEUED)
    arn = "arn:aws:states:us-east-1:123456789012:execution:stereo:" + JOB

    # When it runs and fails with a reason
    store.transition(JOB, JobStatus.RUNNING, execution_arn=arn, stage="chunking")
    job = store.transition(JOB, JobStatus.FAILED, error=JobError(error="NotAVideo", cause="no ftyp box"))

    # Then the attributes (reserved words included) are saved
    assert job.execution_arn == arn
    assert job.error == JobError(error="NotAVideo", cause="no ftyp box")
    assert job.stage == "chunking"


# ---------------------------------------------------------------- progress
def test_progress_total_and_increments(store: JobStore) -> None:
    job_in(store, JobStatus.RUNNING)
    set_progress_total("JobsTable", JOB, 5)
    store.add_progress(JOB)
    store.add_progress(JOB, 2)
    assert store.get(JOB).progress.model_dump() == {"done": 3, "total": 5}


@pytest.fixture
def atomic_moto_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each UpdateItem atomically; moto does not (threads interleave inside it). Lock
    moto's update_item so it behaves like DynamoDB: then only a client-side read-modify-write can lose."""
    lock = threading.Lock()
    original = DynamoDBBackend.update_item

    def update_item(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", update_item)


@pytest.mark.usefixtures("atomic_moto_updates")
def test_concurrent_increments_are_never_lost(store: JobStore) -> None:
    # Given a running job and 8 threads that each add 1 to its progress 10 times
    job_in(store, JobStatus.RUNNING)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            for _ in range(10):
                store.add_progress(JOB)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every increment counted (ADD is atomic)
    assert errors == []
    assert store.get(JOB).progress.done == 80


def test_progress_of_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.add_progress("video-20261123-ffffffffffff")


# ---------------------------------------------------------------- listing
def _jobs_created_at(
    store: JobStore, monkeypatch: pytest.MonkeyPatch, count: int, status: JobStatus
) -> list[str]:
    """`count` jobs in `status`, job i created (and finished) at second i; returns ids oldest first."""
    ids = []
    for i in range(count):
        job_id = f"tts-20261123-{i:012d}"
        with monkeypatch.context() as patch:
            patch.setattr("time.time", lambda i=i: 1_800_000_000.0 + i + 0.25)
            job_in(store, status, job_id)
        ids.append(job_id)
    return ids


@pytest.mark.parametrize(
    "status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.CANCELLED]
)
def test_listing_is_newest_first_across_pages(
    store: JobStore, monkeypatch: pytest.MonkeyPatch, status: JobStatus
) -> None:
    # Given 7 jobs in `status` and 2 in another
    ids = _jobs_created_at(store, monkeypatch, 7, status)
    other = JobStatus.FAILED if status is not JobStatus.FAILED else JobStatus.RUNNING
    job_in(store, other, "tts-20261123-aaaaaaaaaaaa")
    job_in(store, other, "tts-20261123-bbbbbbbbbbbb")

    # When they are listed 3 at a time until no token is left
    pages, token = [], None
    while True:
        jobs, token = store.list(status, limit=3, next_token=token)
        pages.append([job.job_id for job in jobs])
        if token is None:
            break

    # Then pages of 3, 3, 1 (and maybe an empty last one), newest first, each job once, none of the others
    seen = [job_id for page in pages for job_id in page]
    assert seen == list(reversed(ids))
    assert [len(page) for page in pages][:3] == [3, 3, 1]


def test_listing_an_empty_status(store: JobStore) -> None:
    assert store.list(JobStatus.RUNNING) == ([], None)


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1])
def test_listing_limit_out_of_range(store: JobStore, limit: int) -> None:
    with pytest.raises(BadRequest) as refused:
        store.list(JobStatus.RUNNING, limit=limit)
    assert refused.value.field == "limit"


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "bm90IGpzb24",  # "not json"
        encode_page_token({"job_id": JOB, "status": "running", "created_at": 1}),  # another status
        encode_page_token({"job_id": JOB, "status": "queued"}),  # no sort key
        encode_page_token({"job_id": JOB, "status": "queued", "completed_at": 1}),  # the other index's key
        encode_page_token({"job_id": JOB, "status": "queued", "created_at": "soon"}),
        encode_page_token({"job_id": JOB, "status": "queued", "created_at": True}),
        encode_page_token({"job_id": "../../x", "status": "queued", "created_at": 1}),
        encode_page_token({"job_id": JOB, "status": "queued", "created_at": 1, "extra": 1}),
        "eyJqb2JfaWQiOiJzdGVyZW8tMjAyNjExMjMtMDEyMzQ1Njc4OWFiIiwic3RhdHVzIjoicXVldWVkIiwiY3JlYXRlZF9hdCI6SW5maW5pdHl9",
        "é",
    ],
)
def test_bad_tokens_are_bad_requests(store: JobStore, token: str) -> None:
    # Given a token that is not one this store handed out for this status
    # When listing with it  Then BadRequest on `next` (never a DynamoDB error)
    with pytest.raises(BadRequest) as refused:
        store.list(JobStatus.QUEUED, next_token=token)
    assert refused.value.field == "next"
