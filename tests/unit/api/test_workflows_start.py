"""workflows.start: an execution named by the job id, so a duplicate start is a no-op."""

from __future__ import annotations

import json
from typing import Any

import pytest

from storyflow import aws, registry, workflows
from storyflow.errors import BadRequest, WorkflowNotDeployed
from storyflow.models import JobKind
from storyflow.settings import Settings
from tests.unit.api.conftest import executions

JOB = "video-20261123-0123456789ab"


def test_start_names_the_execution_by_the_job_id(state_machines: dict[str, str]) -> None:
    # Given a deployed video machine  When a job's workflow is started
    arn, started = workflows.start(registry.get(JobKind.VIDEO), JOB, {"job_id": JOB}, Settings.from_env())

    # Then one execution named by the job id runs with the payload
    assert started is True
    assert arn == workflows.execution_arn(state_machines["video"], JOB)
    execution = aws.client("stepfunctions").describe_execution(executionArn=arn)
    assert execution["name"] == JOB and json.loads(execution["input"]) == {"job_id": JOB}


def test_a_duplicate_start_is_a_no_op_returning_the_same_execution(state_machines: dict[str, str]) -> None:
    # Given a job whose workflow was started
    first, _ = workflows.start(registry.get(JobKind.VIDEO), JOB, {"job_id": JOB}, Settings.from_env())

    # When it is started again (a retried event, a second upload notification)
    again, started = workflows.start(
        registry.get(JobKind.VIDEO), JOB, {"job_id": JOB, "retry": True}, Settings.from_env()
    )

    # Then nothing new runs and the same execution is returned
    assert started is False
    assert again == first
    assert len(executions()) == 1


def test_a_kind_without_a_machine_is_not_deployed(stack: dict[str, Any]) -> None:
    with pytest.raises(WorkflowNotDeployed) as refused:
        workflows.start(registry.get(JobKind.TTS), JOB, {}, Settings.from_env())
    assert refused.value.field == "kind" and refused.value.status_code == 400


def test_a_malformed_job_id_never_becomes_an_execution_name(state_machines: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        workflows.start(registry.get(JobKind.VIDEO), "../x", {}, Settings.from_env())
    assert executions() == []


def test_stop_of_an_unknown_execution_is_ignored(state_machines: dict[str, str]) -> None:
    # Given no execution for this job  When it is stopped  Then nothing fails
    workflows.stop(workflows.execution_arn(state_machines["video"], JOB), cause="test")
