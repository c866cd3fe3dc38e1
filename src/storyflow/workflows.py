"""Starts and stops a job's state machine; executions are named by the job id, so a duplicate start is a
no-op and a job's execution ARN can always be derived."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from storyflow import aws
from storyflow.errors import WorkflowNotDeployed
from storyflow.keys import check_job_id
from storyflow.observability import logger
from storyflow.registry import Workflow
from storyflow.settings import Settings


def state_machine_arn(workflow: Workflow, settings: Settings) -> str:
    """The kind's state machine, or WorkflowNotDeployed (400) when this stack has none for it."""
    arn: str = getattr(settings, workflow.state_machine_setting)
    if not arn:
        raise WorkflowNotDeployed(f"kind {workflow.kind.value!r} has no workflow in this stack", field="kind")
    return arn


def execution_arn(state_machine: str, job_id: str) -> str:
    return state_machine.replace(":stateMachine:", ":execution:", 1) + ":" + job_id


def start(
    workflow: Workflow, job_id: str, payload: dict[str, Any], settings: Settings, name: str | None = None
) -> tuple[str, bool]:
    """Start (or find) the execution named `name` (default: the job id; a story's regenerate names its
    revision's). Returns (execution arn, started now?)."""
    machine = state_machine_arn(workflow, settings)
    name = check_job_id(name or job_id)
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(payload)
        )
    except ClientError as error:
        if aws.error_code(error) != "ExecutionAlreadyExists":
            raise
        existing = execution_arn(machine, name)
        logger.info("execution already exists; duplicate start ignored", extra={"execution_arn": existing})
        return existing, False
    arn: str = response["executionArn"]
    logger.info("execution started", extra={"execution_arn": arn, "kind": workflow.kind.value})
    return arn, True


def stop(execution: str, cause: str) -> None:
    """Stop an execution (ABORTED); one that does not exist (never started) is not an error."""
    try:
        aws.client("stepfunctions").stop_execution(executionArn=execution, error="Cancelled", cause=cause)
    except ClientError as error:
        if aws.error_code(error) != "ExecutionDoesNotExist":
            raise
