"""Public SSM parameters a template names (AWS publishes them in every account) exist locally too."""

from __future__ import annotations

import boto3
from moto import mock_aws

from storyflow_local.deploy import PLACEHOLDER_AMI, public_ssm_parameters

# A public parameter moto's data does not have (a future AMI line), and one it has (the video GPU AMI's).
GPU_AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2099/gpu/recommended/image_id"
TEMPLATE = {
    "Parameters": {
        "GpuAmi": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": GPU_AMI},
        "Known": {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id",
        },
        "Plain": {"Type": "String", "Default": "/aws/service/not-a-lookup"},
    }
}


def test_a_missing_public_parameter_gets_a_placeholder_and_known_ones_are_left_alone() -> None:
    with mock_aws():
        # When the template's lookups are prepared
        added = public_ssm_parameters(TEMPLATE, {}, "us-east-1")

        # Then only the one moto lacks was added, with an AMI-shaped value that CloudFormation can resolve
        assert added == [GPU_AMI]
        ssm = boto3.client("ssm", region_name="us-east-1")
        assert ssm.get_parameter(Name=GPU_AMI)["Parameter"]["Value"] == PLACEHOLDER_AMI
        # And a second deployment adds nothing
        assert public_ssm_parameters(TEMPLATE, {}, "us-east-1") == []
