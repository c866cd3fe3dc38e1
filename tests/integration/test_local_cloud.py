"""The real template.yaml in the local cloud: every function, state machine, queue, table and route exists."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from storyflow.local import LocalCloud
from storyflow.local.cfn_yaml import load
from storyflow.local.http_shim import api_routes, find_route
from tests.integration.conftest import TEMPLATE


def _template() -> dict[str, Any]:
    return load(TEMPLATE)


def _created(cloud: LocalCloud, *types: str) -> dict[str, str]:
    """Logical id → physical id of the template's resources of these types whose Condition holds."""
    assert cloud.deployment is not None
    template = _template()
    expected = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in types:
            continue
        condition = resource.get("Condition")
        if condition and not cloud.deployment.resolve({"Fn::If": [condition, True, False]}):
            continue
        assert logical_id in cloud.deployment.resources, f"{logical_id} ({resource['Type']}) was not created"
        expected[logical_id] = cloud.physical_id(logical_id)
    return expected


def test_every_function_exists_with_resolved_environment(local_cloud: LocalCloud) -> None:
    functions = _created(local_cloud, "AWS::Serverless::Function", "AWS::Lambda::Function")
    assert functions
    lam = local_cloud.client("lambda")
    for logical_id, name in functions.items():
        config = lam.get_function(FunctionName=name)["Configuration"]
        for key, value in config.get("Environment", {}).get("Variables", {}).items():
            assert "<moto" not in value and not value.startswith("{"), f"{logical_id}: {key}={value!r}"


def test_every_state_machine_is_executable_with_its_substitutions(local_cloud: LocalCloud) -> None:
    machines = _created(local_cloud, "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    assert machines
    sfn = local_cloud.client("stepfunctions")
    for logical_id, arn in machines.items():
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        assert "${" not in definition, f"{logical_id}: a DefinitionSubstitution is missing"
        json.loads(definition)
        assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_every_queue_and_table_exists(local_cloud: LocalCloud) -> None:
    sqs, dynamodb = local_cloud.client("sqs"), local_cloud.client("dynamodb")
    for url in _created(local_cloud, "AWS::SQS::Queue").values():
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    template = _template()["Resources"]
    for logical_id, name in _created(local_cloud, "AWS::DynamoDB::Table").items():
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == template[logical_id]["Properties"]["KeySchema"]
        indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {
            i["IndexName"] for i in template[logical_id]["Properties"].get("GlobalSecondaryIndexes", [])
        }


def test_every_route_is_served(local_cloud: LocalCloud) -> None:
    routes = api_routes(_template())
    assert routes and local_cloud.api_url
    served = [r for server in local_cloud.api.servers.values() for r in server.routes]
    for route in routes:
        path = route.path.replace("{proxy+}", "a/b")
        path = "/".join("x" if s.startswith("{") else s for s in path.split("/"))
        method = "GET" if route.method == "ANY" else route.method
        found = find_route(served, method, path)
        assert found is not None and found[0].function == route.function, route


def test_the_health_route_answers_through_the_shim(local_cloud: LocalCloud) -> None:
    with urllib.request.urlopen(f"{local_cloud.api_url}/health", timeout=30) as response:
        assert response.status == 200


def test_a_submission_retried_with_its_idempotency_key_is_one_job(local_cloud: LocalCloud) -> None:
    # Given a stereo submission sent twice with the same Idempotency-Key (the template's IdempotencyTable)
    body = json.dumps({"kind": "stereo"}).encode()
    answers = []
    for _ in range(2):
        request = urllib.request.Request(
            f"{local_cloud.api_url}/jobs",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "integration-retry-0001"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answers.append((response.status, json.loads(response.read())))
    # Then both answers are the same accepted job
    (status, first), (status_again, again) = answers
    assert status == status_again == 202
    assert again == first
    # ... and the key's record is in the template's Idempotency table
    table = local_cloud.physical_id("IdempotencyTable")
    items = local_cloud.client("dynamodb").scan(TableName=table)["Items"]
    assert [item["status"]["S"] for item in items] == ["COMPLETED"]


def test_the_state_file_describes_the_running_cloud(local_cloud: LocalCloud) -> None:
    state = json.loads(local_cloud.config.state_path().read_text())
    assert state["endpoint_url"] == local_cloud.endpoint_url
    assert state["api_url"] == local_cloud.api_url
    assert state["outputs"]["ApiUrl"] == local_cloud.api_url
