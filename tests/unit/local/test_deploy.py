"""Deploy: the template is packaged, transformed and created by moto's CloudFormation, gaps covered."""

from __future__ import annotations

import json
from pathlib import Path

from storyflow_local import LocalCloud
from storyflow_local.cfn_gaps import bucket_notification_config, state_machine_definition
from storyflow_local.cfn_yaml import loads
from storyflow_local.package import Packager, zip_directory
from tests.unit.local.support import FIXTURE_APP


def test_the_stack_is_complete_with_the_resources_moto_skips(app_cloud: LocalCloud) -> None:
    # Given the deployed fixture stack
    cloudformation = app_cloud.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName="fixture")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["Stage"] == "local"
    # Then SNS::Subscription, CloudWatch::Alarm exist for real; QueuePolicy and the API stage are recorded
    subscriptions = app_cloud.client("sns").list_subscriptions_by_topic(
        TopicArn=app_cloud.physical_id("InferenceErrorTopic")
    )["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["lambda"]
    alarms = app_cloud.client("cloudwatch").describe_alarms(AlarmNames=[app_cloud.outputs["AlarmName"]])
    assert alarms["MetricAlarms"][0]["Threshold"] == 1
    types = {r.type for r in app_cloud.deployment.resources.values()}  # type: ignore[union-attr]
    assert {"AWS::SQS::QueuePolicy", "AWS::ApiGateway::Stage", "AWS::SNS::Subscription"} <= types


def test_bucket_versioning_and_notifications_are_applied(app_cloud: LocalCloud) -> None:
    s3 = app_cloud.client("s3")
    assert s3.get_bucket_versioning(Bucket=app_cloud.outputs["DataBucketName"])["Status"] == "Enabled"
    config = s3.get_bucket_notification_configuration(Bucket=app_cloud.outputs["UploadBucketName"])
    assert config["LambdaFunctionConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]


def test_local_code_is_uploaded_like_sam_package(app_cloud: LocalCloud) -> None:
    # The function's code object is the zip of its CodeUri directory, in the artifacts bucket
    code = app_cloud.client("lambda").get_function(FunctionName=app_cloud.outputs["EchoFunctionName"])
    assert code["Configuration"]["Handler"] == "app.handler"
    deployment = app_cloud.deployment
    assert deployment is not None
    assert FIXTURE_APP / "functions" / "echo" in deployment.artifacts.code_dirs.values()


def test_yaml_short_forms() -> None:
    template = loads("A: !Sub '${X}'\nB: !GetAtt R.Arn\nC: !Ref P\nD: !If [c, !Ref X, !Ref 'AWS::NoValue']\n")
    assert template == {
        "A": {"Fn::Sub": "${X}"},
        "B": {"Fn::GetAtt": ["R", "Arn"]},
        "C": {"Ref": "P"},
        "D": {"Fn::If": ["c", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
    }


def test_packaging_rewrites_local_uris(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("x = 1\n")
    (tmp_path / "m.asl.json").write_text("{}")
    template = {
        "Resources": {
            "F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "fn/"}},
            "M": {"Type": "AWS::Serverless::StateMachine", "Properties": {"DefinitionUri": "m.asl.json"}},
            "R": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://b/k.zip"}},
        }
    }
    packager = Packager(tmp_path)
    out = packager.package(template)["Resources"]
    assert out["F"]["Properties"]["CodeUri"].startswith("s3://storyflow-local-artifacts/")
    assert out["M"]["Properties"]["DefinitionUri"]["Bucket"] == "storyflow-local-artifacts"
    assert out["R"]["Properties"]["CodeUri"] == "s3://b/k.zip"
    assert zip_directory(tmp_path / "fn") == zip_directory(tmp_path / "fn")  # deterministic


def test_definition_substitutions() -> None:
    props = {
        "DefinitionString": json.dumps({"A": "${X}", "B": "${Y}"}),
        "DefinitionSubstitutions": {"X": "x", "Y": 3},
    }
    assert json.loads(state_machine_definition(props, "123456789012")) == {"A": "x", "B": "3"}


def test_notification_configuration_conversion() -> None:
    converted = bucket_notification_config(
        {
            "LambdaConfigurations": [
                {
                    "Event": "s3:ObjectCreated:*",
                    "Function": "arn:f",
                    "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "in/"}]}},
                }
            ],
            "EventBridgeConfiguration": {"EventBridgeEnabled": True},
        }
    )
    assert converted == {
        "CloudFunctionConfiguration": [
            {
                "CloudFunction": "arn:f",
                "Event": ["s3:ObjectCreated:*"],
                "Filter": {"S3Key": {"FilterRule": [{"Name": "prefix", "Value": "in/"}]}},
            }
        ],
        "EventBridgeConfiguration": {},
    }
