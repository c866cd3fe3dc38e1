"""The ECS and EC2 calls of the on-demand backend: RunTask, DescribeTasks, StopTask, the task's public IP.

Invariants: RunTask starts one Fargate task with a public IP, and its `clientToken` (the claim's id) makes a
retried request never start a second task; ECS answering with failures instead of a task is `RunTaskFailed`.
StopTask reasons are cut to ECS's 255 characters. Nothing here touches the TaskState item.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from storyflow import aws
from storyflow.backend.models import BackendSettings
from storyflow.observability import logger

ECS_STOPPED = "STOPPED"


class RunTaskFailed(Exception):
    """RunTask answered without a task; the message is its `failures` as JSON."""


class EcsTask(BaseModel, defer_build=True):
    task_arn: str
    last_status: str
    stopped_reason: str = ""
    eni_id: str | None = None

    @classmethod
    def from_api(cls, task: dict[str, Any]) -> EcsTask:
        eni_id = None
        for attachment in task.get("attachments", []):
            if attachment.get("type") != "ElasticNetworkInterface":
                continue
            for detail in attachment.get("details", []):
                if detail.get("name") == "networkInterfaceId" and detail.get("value"):
                    eni_id = detail["value"]
        return cls(
            task_arn=task["taskArn"],
            last_status=task.get("lastStatus", ""),
            stopped_reason=task.get("stoppedReason") or "",
            eni_id=eni_id,
        )


def run_task(settings: BackendSettings, cluster: str, client_token: str) -> EcsTask:
    """Start the backend's task; raises what the call raises, or RunTaskFailed when ECS started none."""
    response = aws.client("ecs").run_task(
        cluster=cluster,
        taskDefinition=settings.require("task_definition"),
        launchType="FARGATE",
        count=1,
        startedBy="storyflow-task-manager",
        clientToken=client_token,  # a retried RunTask request never starts a second task
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": settings.require("subnets"),
                "securityGroups": [settings.require("security_group")],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    tasks = response.get("tasks") or []
    if not tasks:
        raise RunTaskFailed(json.dumps(response.get("failures") or [], default=str))
    return EcsTask.from_api(tasks[0])


def stop_task(cluster: str, task_arn: str, reason: str) -> None:
    """StopTask (SIGTERM, then SIGKILL after the container's stopTimeout); raises what the call raises."""
    aws.client("ecs").stop_task(cluster=cluster, task=task_arn, reason=reason[:255])


def describe_task(cluster_arn: str, task_arn: str) -> EcsTask | None:
    """The task as ECS sees it now; None when ECS no longer knows it."""
    response = aws.client("ecs").describe_tasks(cluster=cluster_arn, tasks=[task_arn])
    tasks = response.get("tasks") or []
    return EcsTask.from_api(tasks[0]) if tasks else None


def public_ip(task: EcsTask | None) -> str | None:
    """The public IPv4 address of the task's network interface, once it has one."""
    if task is None or task.eni_id is None:
        return None
    try:
        interfaces = aws.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[task.eni_id])
    except ClientError as error:
        logger.info("network interface not readable yet", extra={"eni": task.eni_id, "error": str(error)})
        return None
    for interface in interfaces.get("NetworkInterfaces", []):
        address = (interface.get("Association") or {}).get("PublicIp")
        if address:
            return str(address)
    return None
