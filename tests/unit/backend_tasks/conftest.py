"""Fixtures for the on-demand backend: moto ECS/EC2 built from template.yaml, handlers loaded by path."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_api import state_manager

from storyflow import aws
from storyflow.backend import BackendSettings
from tests.support.template import ROOT, load_template
from tests.unit.conftest import REGION

EVENTS = ROOT / "tests" / "events"
ALARM_NAME = "storyflow-TaskPingAlarm-TEST"
LIFETIME = 900
GRACE = 300


@lru_cache(maxsize=8)
def moto_client(service: str) -> Any:
    """One boto3 session for these tests: moto resets boto3's default session per mock, and re-reading the
    EC2 service model for every test costs more than the test itself."""
    return _session().client(service, region_name=REGION)


@lru_cache(maxsize=1)
def _session() -> Any:
    return boto3.session.Session()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def load_handler(function: str) -> ModuleType:
    """functions/<function>/app.py under a unique module name (every function's module is `app`)."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"storyflow_fn_{function}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(autouse=True)
def _one_boto3_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto gives every test a fresh boto3 default session, which re-parses each service model it touches
    (a third of these tests' time); let them all share one session instead."""

    def setup_default_session(**_: Any) -> None:
        boto3.DEFAULT_SESSION = _session()

    monkeypatch.setattr(boto3, "setup_default_session", setup_default_session)


@pytest.fixture(autouse=True)
def _atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically per item; moto checks and writes without a lock.

    Serialise moto's writes so concurrent callers see DynamoDB's semantics (the threads test needs it).
    """
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def _task_definition_from_template() -> dict[str, Any]:
    """register_task_definition arguments from the template's BackendTaskDefinition (refs as placeholders)."""
    props = load_template()["Resources"]["BackendTaskDefinition"]["Properties"]

    def plain(value: Any) -> str:
        return value if isinstance(value, str) else "from-template"

    containers = []
    for container in props["ContainerDefinitions"]:
        containers.append(
            {
                "name": container["Name"],
                "image": "backend:test",
                "memory": int(container["Memory"]),  # moto's run_task needs it
                "essential": container.get("Essential", True),
                "entryPoint": container["EntryPoint"],
                "portMappings": [
                    {"containerPort": int(m["ContainerPort"]), "protocol": m.get("Protocol", "tcp")}
                    for m in container.get("PortMappings", [])
                ],
                "environment": [
                    {"name": e["Name"], "value": plain(e["Value"])} for e in container.get("Environment", [])
                ],
                "stopTimeout": int(container["StopTimeout"]),
            }
        )
    return {
        "family": "storyflow-backend",
        "networkMode": props["NetworkMode"],
        "requiresCompatibilities": props["RequiresCompatibilities"],
        "cpu": str(props["Cpu"]),
        "memory": str(props["Memory"]),
        "containerDefinitions": containers,
    }


@dataclass
class Backend:
    """The moto account of one test: cluster, network, task definition, and the functions' settings."""

    settings: BackendSettings
    ecs: Any
    ec2: Any
    run_task_calls: list[dict[str, Any]] = field(default_factory=list)

    def tasks(self) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.settings.cluster_arn)["taskArns"]
        if not arns:
            return []
        described: list[dict[str, Any]] = self.ecs.describe_tasks(
            cluster=self.settings.cluster_arn, tasks=arns
        )["tasks"]
        return described

    def task(self, task_arn: str) -> dict[str, Any]:
        found: dict[str, Any] = self.ecs.describe_tasks(cluster=self.settings.cluster_arn, tasks=[task_arn])[
            "tasks"
        ][0]
        return found

    def give_public_ip(self, task_arn: str) -> str:
        """What Fargate does once the task's ENI is up: a public IPv4 address on it."""
        task = self.task(task_arn)
        eni = next(
            d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "networkInterfaceId"
        )
        allocation = self.ec2.allocate_address(Domain="vpc")
        self.ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)
        return str(allocation["PublicIp"])


@pytest.fixture
def backend(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Given the template's tables plus a cluster, a public subnet pair, the backend's security group
    and its task definition; moto tasks stay RUNNING until stopped (as a real backend does)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # ~1 s per test otherwise; no AMI is used
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    ec2 = moto_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        for cidr in ("10.42.0.0/20", "10.42.16.0/20")
    ]
    group = ec2.create_security_group(GroupName="backend", Description="backend", VpcId=vpc)["GroupId"]
    ecs = moto_client("ecs")
    cluster = ecs.create_cluster(clusterName="storyflow")["cluster"]["clusterArn"]
    definition = ecs.register_task_definition(**_task_definition_from_template())["taskDefinition"]
    env = {
        "CLUSTER_ARN": cluster,
        "BACKEND_TASK_DEFINITION": definition["taskDefinitionArn"],
        "SUBNETS": ",".join(subnets),
        "BACKEND_SECURITY_GROUP": group,
        "BACKEND_LIFETIME_SECONDS": str(LIFETIME),
        "BACKEND_STARTUP_GRACE_SECONDS": str(GRACE),
        "TASK_PING_ALARM_NAME": ALARM_NAME,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    moto_client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM_NAME,
        Namespace="storyflow",
        MetricName="TaskPing",
        Dimensions=[{"Name": "service", "Value": "task_manager"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=10,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )
    for service in ("dynamodb", "ecs", "ec2", "cloudwatch"):
        aws.client(service)  # cached clients: created once, not by ten threads at once
    result = Backend(settings=BackendSettings.from_env(), ecs=ecs, ec2=ec2)

    def capture(params: dict[str, Any], **_: Any) -> None:
        result.run_task_calls.append(dict(params))

    aws.client("ecs").meta.events.register("provide-client-params.ecs.RunTask", capture)
    try:
        yield result
    finally:
        aws.client("ecs").meta.events.unregister("provide-client-params.ecs.RunTask", capture)
        state_manager.unset_transition(model_name="ecs::task")


def metrics_from(stdout: str) -> list[dict[str, Any]]:
    """The EMF records Powertools printed."""
    records = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records
