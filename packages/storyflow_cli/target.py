"""Where the API is: --api-url, a stack's CloudFormation outputs, or .storyflow/local.json."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from storyflow_cli.errors import CliError

LOCAL_STATE = Path(".storyflow") / "local.json"


@dataclass
class Target:
    api_url: str
    region: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    source: str = ""
    id_token: str | None = None  # Cognito mode: sent as the Authorization header instead of a signature

    @property
    def signed(self) -> bool:
        """A real API Gateway uses IAM auth: requests to it are SigV4-signed. The local shim is not."""
        host = urlsplit(self.api_url).hostname or ""
        return (
            not self.id_token
            and ".execute-api." in host
            and (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
        )

    @property
    def signing_region(self) -> str:
        host = urlsplit(self.api_url).hostname or ""
        match = re.match(r"^[^.]+\.execute-api\.([a-z0-9-]+)\.", host)
        region = (match and match[1]) or self.region or os.environ.get("AWS_REGION")
        return region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def find_local_state(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LOCAL_STATE
        if candidate.is_file():
            return candidate
    return None


def _cloudformation(region: str | None) -> Any:
    return boto3.session.Session(region_name=region).client("cloudformation")


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    """The stack's CloudFormation Outputs (boto3 honours AWS_ENDPOINT_URL, so the local cloud works too)."""
    client = _cloudformation(region)
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError ...
        raise CliError(f"cannot read stack {stack!r}: {error}") from error
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def resolve_target(
    stack: str | None, api_url: str | None, region: str | None, id_token: str | None = None
) -> Target:
    state_file = find_local_state()
    local: dict[str, Any] = json.loads(state_file.read_text()) if state_file else {}
    if stack:
        outputs = stack_outputs(stack, region)
        if id_token and not api_url:
            if not outputs.get("UserApiUrl"):
                raise CliError(
                    f"stack {stack!r} has no Cognito API (UserApiUrl output): deploy it with "
                    "UserPoolArn=<your user pool ARN>, or drop --id-token to use IAM auth",
                    code=2,
                )
            return Target(outputs["UserApiUrl"], region, outputs, f"stack {stack} (Cognito)", id_token)
        url = api_url or outputs.get("ApiUrl", "")
        # A stack in the local cloud reports a fake execute-api URL; its shim's URL is in local.json.
        if not api_url and local and os.environ.get("AWS_ENDPOINT_URL") == local.get("endpoint_url"):
            url = local.get("api_url") or url
        if not url:
            raise CliError(f"stack {stack!r} has no ApiUrl output; pass --api-url", code=2)
        return Target(url, region, outputs, source=f"stack {stack}", id_token=id_token)
    if api_url:
        return Target(api_url, region, {}, source="--api-url", id_token=id_token)
    if local:
        if local.get("endpoint_url"):
            os.environ["AWS_ENDPOINT_URL"] = str(local["endpoint_url"])
        local_region = region or local.get("region")
        if local_region:
            os.environ.setdefault("AWS_DEFAULT_REGION", str(local_region))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")  # the emulator needs some credentials, never real ones
        url = str(local.get("api_url") or "")
        if not url:
            raise CliError(f"{state_file} has no api_url; is the local cloud up?", code=2)
        return Target(url, local_region, dict(local.get("outputs") or {}), source=str(state_file))
    raise CliError(
        "no API to talk to: pass --stack NAME (a deployed stack), --api-url URL, "
        "or start the local cloud (`storyflow local up`).",
        code=2,
    )
