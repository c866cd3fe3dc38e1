"""Cross-process contracts have one home each, and the template and the ASL agree with it:
- every status an ASL writes to the Jobs table is a JobStatus, written only from statuses the transition
  table allows; every stage it writes is one of its workflow's registered stages;
- every state machine of the template is some registry entry's, wired to the Lambdas by its Settings field;
- the metric namespace is observability's, and each function's service name is its folder name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from storyflow import registry
from storyflow.models import JobStatus, allowed_sources
from storyflow.observability import METRICS_NAMESPACE
from storyflow.settings import Settings
from tests.support.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
STATE_MACHINES = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine"}
FUNCTIONS = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
STATUS_IN = re.compile(r"#status\s+IN\s*\(([^)]*)\)")


def _asl(resource: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads((ROOT / resource["Properties"]["DefinitionUri"]).read_text())
    return definition


def _states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every state, nested Map/Parallel states included."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, state in definition.get("States", {}).items():
        found.append((name, state))
        for inner in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                found.extend(_states(inner))
    return found


def _updates(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, state["Parameters"])
        for name, state in _states(definition)
        if state.get("Resource") == "arn:aws:states:::dynamodb:updateItem"
    ]


def _value(values: dict[str, Any], placeholder: str) -> str:
    value = values[placeholder]
    assert "S" in value, f"{placeholder} must be a constant string, got {value}"
    return str(value["S"])


def _workflow_of(machine: str) -> registry.Workflow:
    env_name = Settings.model_fields
    for workflow in registry.WORKFLOWS:
        alias = env_name[workflow.state_machine_setting].alias
        for function in FUNCTIONS.values():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            ref = variables.get(alias)
            if isinstance(ref, dict) and ref.get("Ref") == machine:
                return workflow
    raise AssertionError(f"{machine} is no registry entry's state machine (no function has its Settings env)")


@pytest.mark.parametrize("machine", sorted(STATE_MACHINES))
def test_every_status_an_asl_writes_is_a_jobstatus_from_an_allowed_source(machine: str) -> None:
    written = 0
    for name, params in _updates(_asl(STATE_MACHINES[machine])):
        update = params.get("UpdateExpression", "")
        if "#status" not in update:
            continue
        values = params["ExpressionAttributeValues"]
        target_placeholder = re.search(r"#status\s*=\s*(:\w+)", update)
        assert target_placeholder, f"{name}: sets #status without a placeholder"
        target = JobStatus(_value(values, target_placeholder[1]))
        condition = STATUS_IN.search(params.get("ConditionExpression", ""))
        assert condition, f"{name}: writes status {target} without a condition on the current status"
        sources = {JobStatus(_value(values, p.strip())) for p in condition[1].split(",")} - {target}
        assert sources <= set(allowed_sources(target)), f"{name}: {sources} -> {target} is not allowed"
        written += 1
    assert written, f"{machine} never marks its job running"


@pytest.mark.parametrize("machine", sorted(STATE_MACHINES))
def test_every_stage_an_asl_writes_is_registered_for_its_workflow(machine: str) -> None:
    workflow = _workflow_of(machine)
    for name, params in _updates(_asl(STATE_MACHINES[machine])):
        match = re.search(r"\bstage\s*=\s*(:\w+)", params.get("UpdateExpression", ""))
        if match:
            stage = _value(params["ExpressionAttributeValues"], match[1])
            assert stage in workflow.stages, f"{name}: stage {stage!r} is not in {workflow.kind}'s stages"


def test_every_kind_with_a_state_machine_in_the_template_is_registered() -> None:
    kinds = {_workflow_of(machine).kind for machine in STATE_MACHINES}
    assert kinds, "the template has no registered state machine"


def test_the_metric_namespace_has_one_home() -> None:
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            namespace = resource["Properties"].get("Namespace")
            if namespace and not str(namespace).startswith("AWS/"):
                assert namespace == METRICS_NAMESPACE, f"alarm {name} watches {namespace}"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_functions_service_name_is_its_folder(function: str) -> None:
    properties = FUNCTIONS[function]["Properties"]
    folder = Path(properties["CodeUri"]).name
    service = properties.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
    assert service == folder, f"{function}: POWERTOOLS_SERVICE_NAME {service!r}, folder {folder!r}"
