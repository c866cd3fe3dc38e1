"""What the integration tests run against: the local cloud (default) or a deployed stack.

    STORYFLOW_STACK=storyflow-dev pytest tests/integration     # a deployed stack, found by its outputs
    pytest tests/integration                                   # template.yaml deployed into the local cloud

Either way a test gets one `IntegrationTarget`: the stack's outputs, an `ApiClient` for the API (SigV4-signed
when the API is a real API Gateway), raw HTTP through the same client, boto3 clients and physical ids.
`local` is the `LocalCloud` when there is one; tests that need it are skipped against a stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import requests

from storyflow_cli.client import ApiClient, CliError, Target, resolve_target, sign_request

if TYPE_CHECKING:
    from storyflow_local import LocalCloud

STACK_ENV = "STORYFLOW_STACK"  # the deployed stack to test (unset: the local cloud)
REGION_ENV = "STORYFLOW_REGION"  # its region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's)
API_URL_ENV = "STORYFLOW_API_URL"  # optional: call this API instead of the stack's ApiUrl output


@dataclass
class IntegrationTarget:
    api: ApiClient
    region: str
    local: LocalCloud | None = None
    stack: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _resources: dict[str, str] | None = field(default=None, repr=False)

    @property
    def outputs(self) -> dict[str, str]:
        return self.api.target.outputs

    @property
    def api_url(self) -> str:
        return self.api.target.api_url.rstrip("/")

    @property
    def description(self) -> str:
        return f"stack {self.stack} ({self.region})" if self.stack else "the local cloud"

    def client(self, service: str) -> Any:
        """A boto3 client for the target's account and region (the local cloud's own clients locally)."""
        if self.local is not None:
            return self.local.client(service)
        if service not in self._clients:
            self._clients[service] = boto3.session.Session(region_name=self.region).client(service)
        return self._clients[service]

    def physical_id(self, logical_id: str) -> str:
        """The physical id of one of the template's resources (a name, URL or ARN, by resource type)."""
        if self.local is not None:
            return self.local.physical_id(logical_id)
        resources = self.stack_resources()
        assert logical_id in resources, f"{self.description} has no resource {logical_id}"
        return resources[logical_id]

    def stack_resources(self) -> dict[str, str]:
        """Logical id → physical id of every resource of the deployed stack (read once). ListStackResources,
        since moto (a stack in `storyflow local up`) fails DescribeStackResource(s) on some stacks."""
        if self._resources is None:
            pages = (
                self.client("cloudformation")
                .get_paginator("list_stack_resources")
                .paginate(StackName=self.stack)
            )
            self._resources = {
                r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                for page in pages
                for r in page["StackResourceSummaries"]
            }
        return self._resources

    def http(self, method: str, path: str, *, timeout: float = 30, **kwargs: Any) -> requests.Response:
        """One request to the API, answered as is (no retries, no raising): signed like `api` signs."""
        request = requests.Request(method, self.api_url + path, **kwargs)
        prepared = self.api.session.prepare_request(request)
        if self.api.target.signed:
            sign_request(prepared, self.api.target.signing_region)
        return self.api.session.send(prepared, timeout=timeout)


def from_local_cloud(cloud: LocalCloud) -> IntegrationTarget:
    target = Target(cloud.api_url, cloud.region, cloud.outputs, source="the local cloud")
    return IntegrationTarget(api=ApiClient(target), region=cloud.region, local=cloud)


def have_credentials() -> bool:
    return boto3.session.Session().get_credentials() is not None


def from_stack(stack: str, region: str | None = None) -> IntegrationTarget:
    """The deployed stack `stack`, from its CloudFormation outputs; CliError when it cannot be read."""
    region = region or boto3.session.Session().region_name
    if not have_credentials():
        raise CliError(
            "no AWS credentials to read the stack and sign API requests with "
            "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    resolved = resolve_target(stack, os.environ.get(API_URL_ENV) or None, region)
    if not resolved.outputs:
        raise CliError(f"stack {stack!r} has no outputs: is it deployed from this template.yaml?")
    region = region or resolved.signing_region
    return IntegrationTarget(api=ApiClient(resolved), region=region, stack=stack)
