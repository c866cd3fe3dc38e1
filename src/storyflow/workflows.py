"""Starts the state machine of a job, named by the job id so a duplicate start is a no-op."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from storyflow import aws
from storyflow.errors import WorkflowNotDeployed
from storyflow.keys import check_job_id
from storyflow.models import JobKind
from storyflow.observability import logger
from storyflow.settings import Settings


def state_machine_arn(kind: JobKind, settings: Settings) -> str:
    arn: str = getattr(settings, f"{kind.value}_state_machine_arn")
    if not arn:
        raise WorkflowNotDeployed(f"kind {kind.value!r} has no workflow in this stack", field="kind")
    return arn


def execution_arn(state_machine: str, job_id: str) -> str:
    return state_machine.replace(":stateMachine:", ":execution:", 1) + ":" + job_id


def start(kind: JobKind, job_id: str, payload: dict[str, Any], settings: Settings) -> tuple[str, bool]:
    """Start (or find) the execution `job_id`. Returns (execution arn, started now?)."""
    machine = state_machine_arn(kind, settings)
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=check_job_id(job_id), input=json.dumps(payload)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        existing = execution_arn(machine, job_id)
        logger.info("execution already exists; duplicate start ignored", extra={"execution_arn": existing})
        return existing, False
    arn: str = response["executionArn"]
    logger.info("execution started", extra={"execution_arn": arn, "kind": kind.value})
    return arn, True


def stop(execution: str, cause: str) -> None:
    try:
        aws.client("stepfunctions").stop_execution(executionArn=execution, error="Cancelled", cause=cause)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"ExecutionDoesNotExist"}:
            raise
