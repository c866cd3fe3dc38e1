"""template.yaml agrees with storyflow.backend: the alarm watches exactly the metric the task manager emits,
and every setting the functions read is in their environment."""

from __future__ import annotations

from typing import Any

from storyflow.backend import models
from storyflow.backend.models import BackendSettings
from tests.support.template import load_template


def resource(name: str) -> dict[str, Any]:
    props: dict[str, Any] = load_template()["Resources"][name]["Properties"]
    return props


def environment(function: str) -> dict[str, Any]:
    variables: dict[str, Any] = dict(load_template()["Globals"]["Function"]["Environment"]["Variables"])
    variables.update(resource(function)["Environment"]["Variables"])
    return variables


def test_ping_alarm_watches_the_emitted_metric() -> None:
    """Given the template, Then TaskPingAlarm names the namespace, metric and Powertools `service` dimension
    that put_ping_metric emits, and missing pings count as breaching."""
    alarm = resource("TaskPingAlarm")
    assert alarm["Namespace"] == models.METRICS_NAMESPACE
    assert alarm["MetricName"] == models.PING_METRIC
    assert alarm["Dimensions"] == [{"Name": "service", "Value": models.PING_SERVICE}]
    assert environment("TaskManagerFunction")["POWERTOOLS_SERVICE_NAME"] == models.PING_SERVICE
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        1,
        "LessThanThreshold",
    )
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] == {"Ref": "BackendAlarmPeriodSeconds"}
    assert alarm["EvaluationPeriods"] == {"Ref": "BackendAlarmEvaluationPeriods"}
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert environment("TaskMonitorFunction")["TASK_PING_ALARM_NAME"] == {"Ref": "TaskPingAlarm"}


def test_functions_get_every_setting_they_require() -> None:
    """Given the template, Then each function's environment has the variables its code requires."""
    aliases = {name: field.alias for name, field in BackendSettings.model_fields.items()}
    manager = environment("TaskManagerFunction")
    for name in ("task_state_table", "cluster_arn", "task_definition", "subnets", "security_group"):
        assert aliases[name] in manager, name
    for name in ("lifetime_seconds", "startup_grace_seconds"):
        assert aliases[name] in manager, name
    monitor = environment("TaskMonitorFunction")
    for name in ("task_state_table", "cluster_arn", "startup_grace_seconds", "alarm_name"):
        assert aliases[name] in monitor, name


def test_task_definition_matches_the_code_and_the_stopped_rule() -> None:
    """Given the template, Then the container is `backend` on the backend port with memory set, and the ECS
    STOPPED rule matches the task definition's family on the stack's cluster."""
    definition = resource("BackendTaskDefinition")
    (container,) = definition["ContainerDefinitions"]
    assert container["Name"] == models.CONTAINER_NAME
    assert container["EntryPoint"] == ["storyflow-backend"]
    assert container["PortMappings"][0]["ContainerPort"] == models.BACKEND_PORT
    assert container["Memory"]
    assert (definition["NetworkMode"], definition["RequiresCompatibilities"]) == ("awsvpc", ["FARGATE"])
    pattern = resource("TaskMonitorFunction")["Events"]["TaskStopped"]["Properties"]["Pattern"]
    assert pattern["detail"]["clusterArn"] == [{"Fn::GetAtt": ["Cluster", "Arn"]}]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    family = definition["Family"]["Fn::Sub"]
    assert pattern["detail"]["group"] == [{"Fn::Sub": f"family:{family}"}]
