"""`storyflow sam-env --stack NAME > env.json`: the ``--env-vars`` file for ``sam local invoke``.

For every Lambda function of a deployed stack it reads the function's environment (Lambda
GetFunctionConfiguration on the physical id of each ``AWS::Lambda::Function`` resource: what SAM deployed,
every table, bucket, queue and state machine already resolved) and writes it keyed by the function's
logical id, the shape ``sam local invoke --env-vars`` reads. A handler run by ``sam local`` then talks to
the deployed stack's resources with your credentials.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console
from rich.markup import escape

from storyflow_cli.errors import CliError


def stack_functions(stack: str, session: boto3.session.Session) -> dict[str, str]:
    """{logical id: function name} of the stack's Lambda functions."""
    cfn = session.client("cloudformation")
    try:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
        resources = [r for page in pages for r in page["StackResourceSummaries"]]
    except Exception as error:
        raise CliError(f"cannot read stack {stack!r}: {error}") from error
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::Lambda::Function" and r.get("PhysicalResourceId")
    }


def env_vars(stack: str, region: str | None = None) -> dict[str, dict[str, str]]:
    """The ``--env-vars`` document: {logical id: {NAME: value}} for every function of the stack."""
    session = boto3.session.Session(region_name=region)
    functions = stack_functions(stack, session)
    if not functions:
        raise CliError(f"stack {stack!r} has no Lambda functions")
    lam: Any = session.client("lambda")
    document: dict[str, dict[str, str]] = {}
    for logical, name in sorted(functions.items()):
        try:
            config = lam.get_function_configuration(FunctionName=name)
        except Exception as error:
            raise CliError(f"cannot read function {logical} ({name}): {error}") from error
        document[logical] = dict(config.get("Environment", {}).get("Variables", {}))
    return document


def sam_env_command(
    stack: Annotated[
        str, typer.Option("--stack", envvar="STORYFLOW_STACK", help="Deployed stack name (CloudFormation).")
    ],
    region: Annotated[
        str | None, typer.Option("--region", envvar="STORYFLOW_REGION", help="AWS region of the stack.")
    ] = None,
) -> None:
    """Print the `sam local invoke --env-vars` file for a deployed stack: each function's environment
    (its tables, buckets, queues, state machines), keyed by logical id. `storyflow sam-env --stack NAME >
    env.json`, then `sam local invoke ApiFunction -e tests/events/api_health.json --env-vars env.json`."""
    try:
        document = env_vars(stack, region)
    except CliError as error:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(error.message)}")
        raise typer.Exit(error.code) from None
    print(json.dumps(document, indent=2, sort_keys=True))
