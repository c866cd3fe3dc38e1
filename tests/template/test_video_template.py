"""The video workflow's stack: GPU capacity from zero (capacity provider on a 0..N Auto Scaling group of
ECS GPU-optimized instances), the ASL's runTask.sync through it with a bounded wait, and the intake."""

from __future__ import annotations

import json
from typing import Any

from tests.support.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
ASL: dict[str, Any] = json.loads((ROOT / "statemachines" / "video.asl.json").read_text())


def props(name: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[name]["Properties"]
    return properties


def test_the_capacity_provider_scales_a_group_from_zero_with_managed_scaling_and_termination_protection() -> (
    None
):
    provider = props("VideoCapacityProvider")["AutoScalingGroupProvider"]
    assert provider["AutoScalingGroupArn"] == {"Ref": "GpuAutoScalingGroup"}
    assert provider["ManagedScaling"]["Status"] == "ENABLED"
    assert provider["ManagedTerminationProtection"] == "ENABLED"
    group = props("GpuAutoScalingGroup")
    assert group["MinSize"] == "0" and group["MaxSize"] == {"Ref": "VideoMaxInstances"}
    assert "DesiredCapacity" not in group  # managed scaling owns it
    assert group["NewInstancesProtectedFromScaleIn"] is True  # required by managed termination protection
    associations = props("ClusterCapacityProviders")
    assert {"Ref": "VideoCapacityProvider"} in associations["CapacityProviders"]
    assert "CapacityProviders" not in props("Cluster")  # one owner of the cluster's providers


def test_instances_are_ecs_gpu_optimized_g5_xlarge_by_default_with_type_and_maximum_as_parameters() -> None:
    assert PARAMETERS["VideoGpuAmi"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert PARAMETERS["VideoGpuAmi"]["Default"].startswith("/aws/service/ecs/optimized-ami/")
    assert "/gpu/" in PARAMETERS["VideoGpuAmi"]["Default"]
    assert PARAMETERS["VideoInstanceType"]["Default"] == "g5.xlarge"
    assert "VideoMaxInstances" in PARAMETERS
    data = props("GpuLaunchTemplate")["LaunchTemplateData"]
    assert data["ImageId"] == {"Ref": "VideoGpuAmi"} and data["InstanceType"] == {"Ref": "VideoInstanceType"}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    user_data = json.dumps(data["UserData"])
    assert "ECS_CLUSTER" in user_data and "ECS_ENABLE_GPU_SUPPORT=true" in user_data


def test_the_task_definition_asks_for_one_gpu_on_ec2() -> None:
    definition = props("VideoTaskDefinition")
    assert definition["RequiresCompatibilities"] == ["EC2"]
    (container,) = definition["ContainerDefinitions"]
    assert container["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    assert container["EntryPoint"] == ["storyflow-video"]
    names = {e["Name"] for e in container["Environment"]}
    assert {"RESULT_BUCKET", "ENGINE", "MODEL_URI"} <= names


def test_generate_runs_through_the_capacity_provider_never_a_launch_type() -> None:
    generate = ASL["States"]["Generate"]
    assert generate["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    parameters = generate["Parameters"]
    assert "LaunchType" not in parameters
    (strategy,) = parameters["CapacityProviderStrategy"]
    assert strategy["CapacityProvider"] == "${VideoCapacityProvider}"


def test_the_wait_for_a_gpu_is_bounded_and_ends_with_a_clear_error() -> None:
    states = ASL["States"]
    generate = states["Generate"]
    assert generate["TimeoutSecondsPath"] == "$.config.task_timeout_seconds"
    assert "ProvisioningTimeoutSeconds" in json.dumps(states["Configure"])
    timeout_catch = next(c for c in generate["Catch"] if c["ErrorEquals"] == ["States.Timeout"])
    assert states[timeout_catch["Next"]]["Next"] == "ClassifyTimeout"
    assert states["TimeoutKind"]["Choices"][0]["StringEquals"] == "provisioning"
    assert states["NoGpuCapacity"]["Parameters"]["Error"] == "GpuCapacityUnavailable"


def test_placement_and_capacity_errors_are_retried_with_backoff_and_failures_name_the_step() -> None:
    generate = ASL["States"]["Generate"]
    (retry,) = generate["Retry"]
    assert {"AmazonECS.Unknown", "ECS.AmazonECSException"} <= set(retry["ErrorEquals"])
    assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 3
    other = next(c for c in generate["Catch"] if c["ErrorEquals"] == ["States.ALL"])
    assert other["Next"] == "GenerateFailed"
    assert ASL["States"]["GenerateFailed"]["Result"] == "generate"  # job_status reads its error.json
    assert ASL["States"]["MarkCompleted"]["Parameters"]["Payload"]["result_step"] == "generate"


def test_the_queue_has_a_dead_letter_queue_an_alarm_and_a_topic_that_feeds_it() -> None:
    queue = props("VideoQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["VideoDeadLetterQueue", "Arn"]}
    alarm = props("VideoDeadLetterAlarm")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["VideoDeadLetterQueue", "QueueName"]}
    subscription = props("VideoTopicSubscription")
    assert subscription["Protocol"] == "sqs" and subscription.get("RawMessageDelivery") in (None, False)
    intake = props("VideoIntakeFunction")
    assert intake["CodeUri"] == "functions/intake/"
    assert intake["Environment"]["Variables"]["JOB_KIND"] == "video"
    event = intake["Events"]["Messages"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue["VisibilityTimeout"] >= 6 * 30
