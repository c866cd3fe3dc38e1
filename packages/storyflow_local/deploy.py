"""Deploy a SAM template into the emulator: load → package (S3) → SAM transform → CloudFormation stack.

There is no second description of the stack: every resource comes from the template, created by
moto's CloudFormation (with the gaps covered by `cfn_gaps`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyflow_local import cfn_yaml
from storyflow_local.clients import Clients
from storyflow_local.package import Artifacts, Packager
from storyflow_local.transform import sam_transform

log = logging.getLogger("storyflow_local.deploy")

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployError(RuntimeError):
    pass


@dataclass
class StackResource:
    logical_id: str
    type: str
    physical_id: str


@dataclass
class Deployment:
    stack_name: str
    stack_id: str
    template: dict[str, Any]  # the SAM template as written (intrinsics unresolved)
    transformed: dict[str, Any]  # the CloudFormation template that was created
    parameters: dict[str, str]
    artifacts: Artifacts
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, StackResource] = field(default_factory=dict)
    seconds: float = 0.0

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id].physical_id

    def of_type(self, resource_type: str) -> dict[str, StackResource]:
        return {k: r for k, r in self.resources.items() if r.type == resource_type}

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsics (Ref/GetAtt/Sub/...) against this stack, as CloudFormation would."""
        return resolve_in_stack(self.stack_id, value)


def resolve_in_stack(stack_id: str, value: Any) -> Any:
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import clean_json

    for account in cloudformation_backends.values():
        for backend in account.values():
            stack = backend.stacks.get(stack_id)
            if stack is not None:
                return clean_json(value, stack.resource_map)
    raise DeployError(f"stack {stack_id} not found")


def load_template(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DeployError(f"template not found: {path}")
    return cfn_yaml.load(path)


@dataclass
class Prepared:
    """A packaged template whose SAM transform may still be running (in a forked process)."""

    template: dict[str, Any]
    parameters: dict[str, str]
    packager: Packager
    _transformed: Future[dict[str, Any]] | dict[str, Any]

    def transformed(self) -> dict[str, Any]:
        if isinstance(self._transformed, dict):
            return self._transformed
        try:
            return self._transformed.result()
        except Exception as error:
            raise DeployError(f"SAM transform failed: {error}") from error


def prepare(
    template_path: Path, template: dict[str, Any], parameters: dict[str, str], region: str
) -> Prepared:
    """Package the local artifacts (content-addressed keys, no S3 needed yet) and start the SAM transform.

    On Linux the transform runs in a forked process, so it overlaps moto's (long) import in this one.
    """
    packager = Packager(template_path.resolve().parent)
    packaged = packager.package(template)
    transformed: Future[dict[str, Any]] | dict[str, Any]
    if sys.platform == "linux" and threading.active_count() == 1:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        transformed = pool.submit(sam_transform, packaged, parameters, region)
        pool.shutdown(wait=False)
    else:
        transformed = sam_transform(packaged, parameters, region)
    return Prepared(template, parameters, packager, transformed)


PLACEHOLDER_AMI = "ami-0000000000local0"


def public_ssm_parameters(template: dict[str, Any], parameters: dict[str, str], region: str) -> list[str]:
    """AWS publishes parameters such as the ECS GPU-optimized AMI's (`/aws/service/ecs/...`) in every
    account; moto knows only some. A template parameter of type `AWS::SSM::Parameter::Value<...>` that
    names a missing public one gets a placeholder value (an AMI id shape), as the lookup succeeds on AWS.
    Returns the names it added."""
    import datetime as dt
    import importlib

    account: str = importlib.import_module("moto.core").DEFAULT_ACCOUNT_ID
    ssm: Any = importlib.import_module("moto.ssm.models")
    backend = ssm.ssm_backends[account][region]
    added = []
    for name, slot in (template.get("Parameters") or {}).items():
        kind = str(slot.get("Type", ""))
        path = str(parameters.get(name) or slot.get("Default") or "")
        if not kind.startswith("AWS::SSM::Parameter::Value<") or not path.startswith("/aws/service/"):
            continue
        if backend.get_parameter(path) is not None:
            continue
        value = PLACEHOLDER_AMI if "Image::Id" in kind else "local"
        backend._parameters[path].append(
            ssm.Parameter(
                account_id=account,
                name=path,
                value=value,
                parameter_type="String",
                description="local cloud: stands for the public parameter AWS publishes",
                allowed_pattern=None,
                keyid=None,
                last_modified_date=dt.datetime.now(dt.UTC),
                version=1,
                data_type="aws:ec2:image" if "Image::Id" in kind else "text",
            )
        )
        added.append(path)
        log.info("public SSM parameter %s: not in moto; placeholder %s", path, value)
    return added


def deploy(clients: Clients, prepared: Prepared, stack_name: str) -> Deployment:
    """Upload the artifacts, create the stack and wait for CREATE_COMPLETE."""
    started = time.monotonic()
    packager, parameters, template = prepared.packager, prepared.parameters, prepared.template
    packager.upload(clients.get("s3"))
    transformed = prepared.transformed()

    public_ssm_parameters(template, parameters, clients.region)
    cloudformation = clients.get("cloudformation")
    response = cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
    )
    stack_id = response["StackId"]
    stack = _wait(cloudformation, stack_id)
    deployment = Deployment(
        stack_name=stack_name,
        stack_id=stack_id,
        template=template,
        transformed=transformed,
        parameters=parameters,
        artifacts=packager.artifacts,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    )
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_id):
        for item in page["StackResourceSummaries"]:
            deployment.resources[item["LogicalResourceId"]] = StackResource(
                item["LogicalResourceId"], item["ResourceType"], item.get("PhysicalResourceId", "")
            )
    deployment.seconds = time.monotonic() - started
    log.info(
        "stack %s created: %d resources in %.2fs", stack_name, len(deployment.resources), deployment.seconds
    )
    return deployment


def _wait(cloudformation: Any, stack_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if status.endswith(("FAILED", "ROLLBACK_COMPLETE")) or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]
            reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
            raise DeployError(f"stack {stack_id} ended {status}: {reasons[:3]}")
        time.sleep(0.05)
