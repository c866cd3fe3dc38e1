"""The step result protocol is wired end to end in the template: every ECS step of every state
machine names itself on failure (a Pass after its Catch sets `<ResultPath>.Step` to the container
command, which is the step of the container's jobs/{job_id}/steps/{step}/error.json), the ECS task
definitions tell their containers where to write (RESULT_BUCKET), and job_status may read it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
ECS_SYNC = "arn:aws:states:::ecs:runTask.sync"
FIRST_ARG = re.compile(r"^States\.Array\('(?P<step>[a-z][a-z0-9-]*)'")


def _definitions() -> dict[str, dict[str, Any]]:
    out = {}
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            uri = resource["Properties"].get("DefinitionUri")
            if isinstance(uri, str):
                out[name] = json.loads((ROOT / uri).read_text())
    return out


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, Map item processors included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition.get("States", {}).items():
        found[name] = state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(_states(state[key]))
        for branch in state.get("Branches", []):
            found.update(_states(branch))
    return found


def _ecs_steps() -> list[tuple[str, str, dict[str, Any], dict[str, dict[str, Any]]]]:
    steps = []
    for machine, definition in _definitions().items():
        states = _states(definition)
        for name, state in states.items():
            if state.get("Resource") == ECS_SYNC:
                steps.append((machine, name, state, states))
    return steps


ECS_STEPS = _ecs_steps()


def test_there_are_ecs_steps_to_check() -> None:
    assert {name for _, name, _, _ in ECS_STEPS} >= {"Chunk", "Reassemble"}


@pytest.mark.parametrize(("machine", "name", "state", "states"), ECS_STEPS, ids=[s[1] for s in ECS_STEPS])
def test_every_ecs_step_names_itself_on_failure(
    machine: str, name: str, state: dict[str, Any], states: dict[str, dict[str, Any]]
) -> None:
    # Given an ECS step, its container command's first word is the step of its error.json
    overrides = state["Parameters"]["Overrides"]["ContainerOverrides"]
    commands = [o["Command.$"] for o in overrides if "Command.$" in o]
    assert len(commands) == 1, f"{machine}.{name}: expected one Command.$ override"
    match = FIRST_ARG.match(commands[0])
    assert match, f"{machine}.{name}: Command.$ must start with States.Array('<step>', ...)"
    step = match["step"]
    # Then every Catch goes through a Pass that records that step beside the error and cause
    assert state.get("Catch"), f"{machine}.{name}: no Catch"
    for catcher in state["Catch"]:
        marker = states[catcher["Next"]]
        assert marker["Type"] == "Pass", f"{machine}.{name}: Catch -> {catcher['Next']} is not a Pass"
        assert marker["ResultPath"] == f"{catcher['ResultPath']}.Step"
        assert marker["Result"] == step, f"{machine}.{name}: {catcher['Next']} names {marker['Result']!r}"


def _container_env(task_definition: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for container in task_definition["Properties"]["ContainerDefinitions"]:
        env.update({e["Name"]: e["Value"] for e in container.get("Environment", [])})
    return env


def test_the_ecs_steps_task_definitions_set_result_bucket_to_the_output_bucket() -> None:
    for machine in _definitions():
        substitutions = RESOURCES[machine]["Properties"].get("DefinitionSubstitutions", {})
        for _, name, state, _ in (step for step in ECS_STEPS if step[0] == machine):
            placeholder = re.fullmatch(r"\$\{(\w+)\}", state["Parameters"]["TaskDefinition"])
            assert placeholder, f"{name}: TaskDefinition is not a ${{...}} substitution"
            ref = substitutions[placeholder[1]]
            task_definition = RESOURCES[ref["Ref"]]
            assert _container_env(task_definition).get("RESULT_BUCKET") == {"Ref": "OutputBucket"}


def test_job_status_may_read_step_documents() -> None:
    policies = RESOURCES["JobStatusFunction"]["Properties"]["Policies"]
    statements = [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]
    assert any(
        "s3:GetObject" in s["Action"] and s["Resource"] == {"Fn::Sub": "${OutputBucket.Arn}/jobs/*/steps/*"}
        for s in statements
    ), statements
