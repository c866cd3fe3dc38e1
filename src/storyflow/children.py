"""A parent job's children (a story's tts, video and stereo jobs) when the parent ends early.

Invariant: a child outlives its parent only as a finished job. When a story is cancelled or fails, every
child that is still queued or running is marked cancelled (a conditional write: a child that finished
meanwhile keeps its status). Stopping the child's execution is the caller's choice: the API stops it (a
user's cancel), while a failed story's Map run has already aborted its scenes, and Step Functions stops a
`.sync` child when the state waiting on it is stopped.
"""

from __future__ import annotations

from collections.abc import Callable

from storyflow.errors import Conflict
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobStatus
from storyflow.observability import logger


def cancel_unfinished(
    store: JobStore,
    parent: Job,
    stop: Callable[[Job], object] | None = None,
    found: dict[str, Job] | None = None,
) -> list[str]:
    """Cancel `parent`'s unfinished children; `stop(child)` then stops each one's work. Returns their ids.

    `found`: the children as the caller just read them (else they are read here); one of them that has
    finished since keeps its status, as the cancel is a conditional write."""
    if not parent.children:
        return []
    if found is None:
        found = store.get_many([child.job_id for child in parent.children])
    cancelled: list[str] = []
    for child in found.values():
        if child.status.finished:
            continue
        try:
            child = store.transition(child.job_id, JobStatus.CANCELLED)
        except Conflict:  # finished meanwhile: its own end stands
            continue
        if stop is not None:
            stop(child)
        cancelled.append(child.job_id)
    if cancelled:
        logger.info(
            "children cancelled with their parent", extra={"job_id": parent.job_id, "children": cancelled}
        )
    return cancelled
