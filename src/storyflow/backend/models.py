"""The on-demand backend's data: its settings (the functions' environment), the TaskState item, the answers
of `/start` and of the task monitor, and the names template.yaml agrees on.

Invariants: `TaskState.version` starts at 1 and only grows (store.py bumps it on every status change);
`ACTIVE` are the statuses in which a task is (being) started and may be extended or stopped; the constants
below are checked against template.yaml by tests/unit/backend_tasks/test_backend_template.py.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storyflow.observability import METRICS_NAMESPACE as METRICS_NAMESPACE  # the one namespace

TASK_ID = "main"
CONTAINER_NAME = "backend"
BACKEND_PORT = 8000
PING_METRIC = "TaskPing"
# The `service` dimension Powertools gives the task manager's metrics; the TaskPing alarm names it.
PING_SERVICE = "task_manager"


class TaskStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


ACTIVE = frozenset({TaskStatus.STARTING, TaskStatus.RUNNING})


class TaskState(BaseModel, defer_build=True):
    """The TaskState item."""

    task_id: Literal["main"] = "main"
    task_arn: str | None = None
    status: TaskStatus
    started_at: float
    expires_at: float
    version: int = Field(ge=1)
    claim_id: str
    updated_at: float
    stopped_reason: str | None = None


class BackendStatus(BaseModel, defer_build=True):
    """What `GET /start` answers: `started` (this call ran the task), `running` (a recorded task, kept
    alive), or `starting` (another call is launching the task; no `task_arn` yet: ask again shortly)."""

    status: Literal["started", "running", "starting"]
    task_arn: str | None
    public_ip: str | None
    message: str
    expires_at: float


class MonitorOutcome(BaseModel, defer_build=True):
    """What the task monitor did with one notification (logged and returned by the handler)."""

    action: Literal["stopped", "marked_stopped", "kept", "ignored"]
    reason: str
    task_arn: str | None = None


class BackendSettings(BaseModel):
    """Environment of the task manager and task monitor, read per call."""

    model_config = ConfigDict(populate_by_name=True)

    task_state_table: str = Field("", alias="TASK_STATE_TABLE")
    cluster_arn: str = Field("", alias="CLUSTER_ARN")
    task_definition: str = Field("", alias="BACKEND_TASK_DEFINITION")
    subnets: list[str] = Field(default_factory=list, alias="SUBNETS")
    security_group: str = Field("", alias="BACKEND_SECURITY_GROUP")
    lifetime_seconds: int = Field(900, ge=1, alias="BACKEND_LIFETIME_SECONDS")
    startup_grace_seconds: int = Field(300, ge=0, alias="BACKEND_STARTUP_GRACE_SECONDS")
    alarm_name: str = Field("", alias="TASK_PING_ALARM_NAME")

    @field_validator("subnets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BackendSettings:
        return cls.model_validate(dict(os.environ if environ is None else environ))

    def require(self, name: str) -> Any:
        value = getattr(self, name)
        if not value:
            field = type(self).model_fields[name]
            raise RuntimeError(f"{field.alias or name} is not set in this function's environment")
        return value
