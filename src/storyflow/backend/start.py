"""`GET /start`: start the backend if none runs (exactly once under concurrency), else keep it alive.

Invariants: every call emits one `TaskPing` (the TaskPing alarm's heartbeat) once its action is valid; only
the call that wins the claim calls RunTask, and while it runs (claimed, no task ARN recorded yet) the other
calls answer `starting` (never `running` without a task); a claim superseded while RunTask ran stops the
task it started (never a leaked task); a failed RunTask marks the item stopped so the next call tries again; a
recorded task that ECS reports stopped (or no longer knows) is marked stopped and replaced; a `stopping`
backend answers 503 (`BackendStopping`) until ECS has stopped it.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from storyflow.backend import ecs
from storyflow.backend.models import (
    BACKEND_PORT,
    METRICS_NAMESPACE,
    PING_METRIC,
    PING_SERVICE,
    BackendSettings,
    BackendStatus,
    TaskState,
    TaskStatus,
)
from storyflow.backend.store import TaskStateStore
from storyflow.errors import BadRequest, TransientError
from storyflow.observability import logger

ALLOWED_ACTIONS = ("ping",)
# A claim this old that never recorded a task was abandoned (its Lambda died between claim and RunTask):
# longer than the task manager's timeout, so a live claim is never taken over.
CLAIM_TIMEOUT_SECONDS = 120
MAX_ATTEMPTS = 5
STARTING_MESSAGE = "starting; retry in a few seconds for its address"


class BackendStopping(TransientError):
    """The recorded task is saving its database and stopping; a new one starts once it has stopped."""


def parse_action(raw: str | None) -> str:
    """`action` of `GET /start`: absent (start or keep alive) or `ping` (the same); anything else is a 400."""
    if raw is None or raw == "":
        return "start"
    if raw in ALLOWED_ACTIONS:
        return raw
    allowed = ", ".join(ALLOWED_ACTIONS)
    raise BadRequest(f"unknown action {raw[:40]!r}; allowed values: {allowed} (or no action)", field="action")


def put_ping_metric() -> None:
    """One `TaskPing` (Count 1) in EMF, dimension `service` exactly as the TaskPing alarm expects."""
    with single_metric(
        name=PING_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value=PING_SERVICE)


def _answer(
    status: Literal["started", "running", "starting"], state: TaskState, task: ecs.EcsTask | None
) -> BackendStatus:
    address = ecs.public_ip(task)
    if status == "starting" or address is None:
        message = STARTING_MESSAGE
    else:
        message = f"{'started' if status == 'started' else 'running'} at http://{address}:{BACKEND_PORT}/"
    return BackendStatus(
        status=status,
        task_arn=state.task_arn,
        public_ip=address,
        message=message,
        expires_at=state.expires_at,
    )


def _claim_abandoned(state: TaskState, now: float) -> bool:
    return (
        state.status == TaskStatus.STARTING
        and state.task_arn is None
        and now - state.started_at > CLAIM_TIMEOUT_SECONDS
    )


def _run_task(
    settings: BackendSettings, store: TaskStateStore, claimed: TaskState, now: float
) -> BackendStatus:
    cluster = settings.require("cluster_arn")
    try:
        task = ecs.run_task(settings, cluster, client_token=claimed.claim_id)
    except (ClientError, BotoCoreError, ecs.RunTaskFailed) as error:
        store.mark_stopped(claimed, now, reason=f"RunTask failed: {error}"[:1000])
        raise TransientError(f"could not start the backend: {error}") from error
    recorded = store.record_task(claimed, task.task_arn, now)
    if recorded is None:
        # Our claim was taken over while RunTask ran (it looked abandoned): never leak a running task.
        logger.warning("claim superseded; stopping the task it started", extra={"task_arn": task.task_arn})
        ecs.stop_task(cluster, task.task_arn, reason="storyflow: superseded start claim")
        raise TransientError("the backend is being started by another call; retry")
    logger.info("backend task started", extra={"task_arn": task.task_arn, "version": recorded.version})
    return _answer("started", recorded, task)


def ensure_running(settings: BackendSettings, now: float, *, action: str | None = None) -> BackendStatus:
    """`GET /start`: start the backend if none runs (exactly once under concurrency), else keep it alive."""
    action = parse_action(action)
    put_ping_metric()
    store = TaskStateStore(settings.require("task_state_table"))
    cluster = settings.require("cluster_arn")
    for _ in range(MAX_ATTEMPTS):
        state = store.get()
        if state is None or state.status == TaskStatus.STOPPED or _claim_abandoned(state, now):
            claimed = store.claim(state, now, settings.lifetime_seconds)
            if claimed is None:
                continue  # another call claimed first: look again
            return _run_task(settings, store, claimed, now)
        task = ecs.describe_task(cluster, state.task_arn) if state.task_arn else None
        if state.task_arn and (task is None or task.last_status == ecs.ECS_STOPPED):
            reason = (task.stopped_reason if task else "") or "task no longer known to ECS"
            store.mark_stopped(state, now, reason=f"stopped on its own: {reason}")
            continue  # whoever wrote first, the next pass starts a fresh task
        if state.status == TaskStatus.STOPPING:
            raise BackendStopping("the backend is saving its database and stopping; retry in a few seconds")
        extended = store.extend(state, now, settings.lifetime_seconds)
        if extended is None:
            continue
        logger.info("backend kept alive", extra={"action": action, "expires_at": extended.expires_at})
        # A claim whose RunTask has not returned yet has no task to name: `starting`, not `running`.
        return _answer("running" if extended.task_arn else "starting", extended, task)
    raise TransientError("the backend's state kept changing; retry")
