"""The real template.yaml, deployed (into the local cloud, or the stack STORYFLOW_STACK names): every
function, state machine, queue, table and route exists."""

from __future__ import annotations

import json
import uuid
from typing import Any

from storyflow_local import LocalCloud
from storyflow_local.cfn_yaml import load
from storyflow_local.http_shim import api_routes, find_route
from tests.integration.conftest import TEMPLATE
from tests.support.target import IntegrationTarget


def _template() -> dict[str, Any]:
    return load(TEMPLATE)


def _created(target: IntegrationTarget, *types: str) -> dict[str, str]:
    """Logical id → physical id of the template's resources of these types whose Condition holds (on a
    deployed stack, whose parameters are not known here: every unconditional one, and the conditional ones
    the stack has)."""
    template = _template()
    cloud = target.local
    deployed = target.stack_resources() if cloud is None else {}
    expected = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in types:
            continue
        condition = resource.get("Condition")
        if cloud is not None:
            assert cloud.deployment is not None
            if condition and not cloud.deployment.resolve({"Fn::If": [condition, True, False]}):
                continue
            created = logical_id in cloud.deployment.resources
        else:
            if condition and logical_id not in deployed:
                continue
            created = logical_id in deployed
        assert created, f"{logical_id} ({resource['Type']}) was not created in {target.description}"
        expected[logical_id] = target.physical_id(logical_id) if cloud is not None else deployed[logical_id]
    return expected


def test_every_function_exists_with_resolved_environment(target: IntegrationTarget) -> None:
    functions = _created(target, "AWS::Serverless::Function", "AWS::Lambda::Function")
    assert functions
    lam = target.client("lambda")
    for logical_id, name in functions.items():
        config = lam.get_function(FunctionName=name)["Configuration"]
        for key, value in config.get("Environment", {}).get("Variables", {}).items():
            assert "<moto" not in value and not value.startswith("{"), f"{logical_id}: {key}={value!r}"


def test_every_state_machine_is_executable_with_its_substitutions(target: IntegrationTarget) -> None:
    machines = _created(target, "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    assert machines
    sfn = target.client("stepfunctions")
    for logical_id, arn in machines.items():
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        assert "${" not in definition, f"{logical_id}: a DefinitionSubstitution is missing"
        json.loads(definition)
        # Executable: listing its executions works (other tests may already have run some).
        assert isinstance(sfn.list_executions(stateMachineArn=arn)["executions"], list)


def test_every_queue_and_table_exists(target: IntegrationTarget) -> None:
    sqs, dynamodb = target.client("sqs"), target.client("dynamodb")
    for url in _created(target, "AWS::SQS::Queue").values():
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    template = _template()["Resources"]
    for logical_id, name in _created(target, "AWS::DynamoDB::Table").items():
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == template[logical_id]["Properties"]["KeySchema"]
        indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {
            i["IndexName"] for i in template[logical_id]["Properties"].get("GlobalSecondaryIndexes", [])
        }


def test_every_route_is_served_by_the_local_api_shim(local_cloud: LocalCloud) -> None:
    routes = api_routes(_template())
    assert routes and local_cloud.api_url
    served = [r for server in local_cloud.api.servers.values() for r in server.routes]
    for route in routes:
        path = route.path.replace("{proxy+}", "a/b")
        path = "/".join("x" if s.startswith("{") else s for s in path.split("/"))
        method = "GET" if route.method == "ANY" else route.method
        found = find_route(served, method, path)
        assert found is not None and found[0].function == route.function, route


def test_the_health_route_answers(target: IntegrationTarget) -> None:
    response = target.http("GET", "/health")
    assert response.status_code == 200, response.text


def test_a_submission_retried_with_its_idempotency_key_is_one_job(target: IntegrationTarget) -> None:
    # Given a stereo submission sent twice with the same Idempotency-Key (the template's IdempotencyTable)
    key = f"integration-retry-{uuid.uuid4().hex}"
    answers = []
    for _ in range(2):
        response = target.http("POST", "/jobs", json={"kind": "stereo"}, headers={"Idempotency-Key": key})
        answers.append((response.status_code, response.json()))
    # Then both answers are the same accepted job
    (status, first), (status_again, again) = answers
    assert status == status_again == 202, answers
    assert again == first
    # ... and the key's one record, holding that answer, is in the template's Idempotency table
    table = target.physical_id("IdempotencyTable")
    pages = (
        target.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table,
            FilterExpression="contains(#data, :job_id)",
            ExpressionAttributeNames={"#data": "data"},
            ExpressionAttributeValues={":job_id": {"S": first["job_id"]}},
        )
    )
    items = [item for page in pages for item in page["Items"]]
    assert [item["status"]["S"] for item in items] == ["COMPLETED"]


def test_the_state_file_describes_the_running_cloud(local_cloud: LocalCloud) -> None:
    state = json.loads(local_cloud.config.state_path().read_text())
    assert state["endpoint_url"] == local_cloud.endpoint_url
    assert state["api_url"] == local_cloud.api_url
    assert state["outputs"]["ApiUrl"] == local_cloud.api_url
