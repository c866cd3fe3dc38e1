"""Cognito auth mode: given a user pool ARN, UserApi serves the routes of the IAM Api to the pool's users.

UserApi's routes are written out in its body (SAM cannot make an API's events conditional), so these tests
keep it in step with Api: every route of Api reaches the same function through UserApi, every UserApi method
requires the pool, and UserApi (with its permissions and output) exists only when a pool is given.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from storyflow_local.package import Packager
from storyflow_local.transform import sam_transform
from tests.support.template import ROOT, load_template, resources

POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@cache
def cognito_mode() -> dict[str, Any]:
    """template.yaml through the SAM transform as `sam deploy` runs it with UserPoolArn set."""
    packaged = Packager(ROOT).package(copy.deepcopy(load_template()))
    return sam_transform(packaged, {"UserPoolArn": POOL}, "us-east-1")


def user_api_body() -> dict[str, Any]:
    body: dict[str, Any] = cognito_mode()["Resources"]["UserApi"]["Properties"]["Body"]
    return body


def api_routes() -> list[tuple[str, str, str]]:
    """(path, method, function) of every Api event on the IAM Api."""
    routes = []
    for name, function in resources("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            props = event["Properties"]
            if event["Type"] == "Api" and props.get("RestApiId") == {"Ref": "Api"}:
                routes.append((props["Path"], props["Method"].lower(), name))
    return routes


def integrated_function(operation: dict[str, Any]) -> str:
    """The function a proxy integration invokes, from its `...functions/${Name.Arn}/invocations` uri."""
    integration = operation["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy", integration
    uri = integration["uri"]["Fn::Sub"]
    return str(uri.split("functions/${", 1)[1].split(".Arn}", 1)[0])


def user_api_operation(path: str, method: str) -> dict[str, Any]:
    """The UserApi operation API Gateway picks for a request: an exact path before the greedy proxy."""
    paths = user_api_body()["paths"]
    item = paths.get(path) or paths["/{proxy+}"]
    operation: dict[str, Any] = item.get(method) or item["x-amazon-apigateway-any-method"]
    return operation


def test_the_iam_api_has_routes() -> None:
    assert len(api_routes()) >= 7


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: f"{r[1].upper()} {r[0]}")
def test_user_api_routes_each_api_route_to_the_same_function(route: tuple[str, str, str]) -> None:
    path, method, function = route
    assert integrated_function(user_api_operation(path, method)) == function


def is_cors_preflight(method: str, operation: dict[str, Any]) -> bool:
    """SAM's CORS preflight: OPTIONS answered by a mock integration (a browser sends it without a token)."""
    return method == "options" and operation["x-amazon-apigateway-integration"]["type"] == "mock"


def test_every_user_api_method_requires_the_user_pool() -> None:
    body = user_api_body()
    operations = [
        operation
        for item in body["paths"].values()
        for method, operation in item.items()
        if (method in METHODS or method == "x-amazon-apigateway-any-method")
        and not is_cors_preflight(method, operation)
    ]
    assert operations
    for operation in operations:
        assert operation["security"] == [{"CognitoAuth": []}], operation
    authorizer = body["securityDefinitions"]["CognitoAuth"]["x-amazon-apigateway-authorizer"]
    assert authorizer == {"type": "cognito_user_pools", "providerARNs": [POOL]}


def test_cors_preflights_allow_only_the_dashboards_origin() -> None:
    # Given UserApi in Cognito mode  Then every path has an unauthenticated OPTIONS preflight whose
    # Access-Control-Allow-Origin is the dashboard's CloudFront domain (never "*")
    dashboard = {"Fn::Sub": "'https://${Dashboard.DomainName}'"}
    for path, item in user_api_body()["paths"].items():
        preflight = item.get("options")
        assert preflight is not None and is_cors_preflight("options", preflight), path
        assert "security" not in preflight or preflight["security"] in ([], [{"NONE": []}]), path
        headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == dashboard, path
    responses = cognito_mode()["Resources"]["UserApi"]["Properties"]["Body"][
        "x-amazon-apigateway-gateway-responses"
    ]
    for response in responses.values():
        assert (
            response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == dashboard
        )


def test_each_function_behind_user_api_may_be_invoked_by_it() -> None:
    transformed = cognito_mode()["Resources"]
    functions = {
        integrated_function(operation)
        for item in user_api_body()["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        and operation.get("x-amazon-apigateway-integration", {}).get("type") == "aws_proxy"
    }
    permitted = {
        r["Properties"]["FunctionName"]["Ref"]
        for r in transformed.values()
        if r["Type"] == "AWS::Lambda::Permission" and "${UserApi}" in str(r["Properties"]["SourceArn"])
    }
    assert functions == permitted == {"ApiFunction", "TaskManagerFunction"}


def test_user_api_exists_only_when_a_user_pool_is_given() -> None:
    template = cognito_mode()
    assert template["Conditions"]["HasUserPool"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "UserPoolArn"}, ""]}]
    }
    user_api = {
        name: r
        for name, r in template["Resources"].items()
        if name.startswith("UserApi") or "${UserApi}" in str(r.get("Properties", {}))
    }
    assert {"UserApi", "UserApiJobsPermission", "UserApiStartPermission"} <= set(user_api)
    assert {name: r.get("Condition") for name, r in user_api.items()} == dict.fromkeys(
        user_api, "HasUserPool"
    )
    assert template["Outputs"]["UserApiUrl"]["Condition"] == "HasUserPool"
    assert load_template()["Parameters"]["UserPoolArn"]["Default"] == ""
