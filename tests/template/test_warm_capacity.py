"""Optional warm GPU capacity: a minimum on a schedule for the stereo and tts endpoints and the video GPU
group.

The template is rendered with the warm parameters unset (the default: nothing scheduled, every GPU scales from
zero) and set (two scheduled actions per scalable target and two for the Auto Scaling group); then the local
cloud deploys it with them set, in its own process (moto is process-wide state).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import ROOT, TEMPLATE, load_template

NO_VALUE = object()
WARM = {
    "WarmStartCron": "30 7 * * MON-FRI",
    "WarmStopCron": "0 19 * * MON-FRI",
    "WarmTimeZone": "Europe/Paris",
    "StereoWarmInstances": "1",
    "TtsWarmInstances": "1",
    "VideoWarmInstances": "1",
}
TARGETS = {
    "StereoScalableTarget": ("stereo", "StereoWarmInstances"),
    "TtsScalableTarget": ("tts", "TtsWarmInstances"),
}


class Rendered:
    """template.yaml with parameters applied: resources whose condition is false removed; a resource's
    properties, when asked for, with Fn::If / Ref / Sub / Select / Split resolved (Refs and GetAtts of
    resources stay as placeholders)."""

    def __init__(self, overrides: dict[str, str]) -> None:
        template = load_template()
        declared = template["Parameters"]
        self.parameters = {
            name: str(overrides.get(name, spec.get("Default", ""))) for name, spec in declared.items()
        }
        self.condition_specs: dict[str, Any] = template.get("Conditions", {})
        self.conditions: dict[str, bool] = {}
        self.resources = {
            name: resource
            for name, resource in template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def properties(self, name: str) -> dict[str, Any]:
        rendered: dict[str, Any] = self.value(self.resources[name].get("Properties", {}))
        return rendered

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.evaluate(self.condition_specs[name]))
        return self.conditions[name]

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (str(self.evaluate(a)) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not self.evaluate(arg[0])
            if key == "Fn::And":
                return all(self.evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self.evaluate(a) for a in arg)
        return self.value(node)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.parameters.get(arg, f"<{arg}>")
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if key == "Fn::Select":
                items = self.value(arg[1])
                return items[int(arg[0])] if isinstance(items, list) else f"<{key}>"
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                values = {k: str(self.value(v)) for k, v in variables.items()}
                return re.sub(
                    r"\$\{([^}]+)\}", lambda m: values.get(m[1], self.parameters.get(m[1], m[0])), text
                )
            if key == "Fn::GetAtt":
                return f"<{arg if isinstance(arg, str) else '.'.join(arg)}>"
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """name -> rendered properties of every created resource of that type."""
        return {name: self.properties(name) for name, r in self.resources.items() if r["Type"] == kind}


def test_by_default_nothing_is_scheduled_and_every_gpu_scales_from_zero() -> None:
    # Given the template with every warm parameter at its default
    rendered = Rendered({})
    # Then no scheduled action exists anywhere, and every minimum is 0
    assert rendered.of_type("AWS::AutoScaling::ScheduledAction") == {}
    for name in TARGETS:
        props = rendered.properties(name)
        assert "ScheduledActions" not in props and props["MinCapacity"] == 0
    assert rendered.properties("GpuAutoScalingGroup")["MinSize"] == "0"
    for count in ("StereoWarmInstances", "TtsWarmInstances", "VideoWarmInstances"):
        assert rendered.parameters[count] == "0"
    assert rendered.parameters["WarmStartCron"] == rendered.parameters["WarmStopCron"] == ""


@pytest.mark.parametrize("unset", ["WarmStartCron", "WarmStopCron"])
def test_half_a_schedule_creates_nothing(unset: str) -> None:
    rendered = Rendered({**WARM, unset: ""})
    assert rendered.of_type("AWS::AutoScaling::ScheduledAction") == {}
    assert all("ScheduledActions" not in rendered.properties(name) for name in TARGETS)


def test_a_zero_count_leaves_that_gpu_unscheduled() -> None:
    rendered = Rendered({**WARM, "TtsWarmInstances": "0", "VideoWarmInstances": "0"})
    assert "ScheduledActions" in rendered.properties("StereoScalableTarget")
    assert "ScheduledActions" not in rendered.properties("TtsScalableTarget")
    assert rendered.of_type("AWS::AutoScaling::ScheduledAction") == {}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_endpoints_get_a_minimum_from_start_to_stop_in_the_time_zone(target: str) -> None:
    # Given the warm parameters set
    rendered = Rendered(WARM)
    kind, count = TARGETS[target]
    props = rendered.properties(target)
    # Then the endpoint's scalable target keeps the warm minimum from start to stop, and 0 after
    start, stop = props["ScheduledActions"]
    assert start == {
        "ScheduledActionName": f"{kind}-warm-start",
        "Schedule": "cron(30 7 ? * MON-FRI *)",
        "Timezone": "Europe/Paris",
        "ScalableTargetAction": {"MinCapacity": WARM[count]},
    }
    assert stop == {
        "ScheduledActionName": f"{kind}-warm-stop",
        "Schedule": "cron(0 19 ? * MON-FRI *)",
        "Timezone": "Europe/Paris",
        "ScalableTargetAction": {"MinCapacity": 0},
    }
    # and the target's own bounds and scaling policies are unchanged (the default minimum stays 0)
    assert props["MinCapacity"] == 0


def test_the_gpu_group_gets_a_minimum_from_start_to_stop_in_the_time_zone() -> None:
    rendered = Rendered(WARM)
    actions = rendered.of_type("AWS::AutoScaling::ScheduledAction")
    assert set(actions) == {"GpuWarmStart", "GpuWarmStop"}
    start, stop = actions["GpuWarmStart"], actions["GpuWarmStop"]
    assert start == {
        "AutoScalingGroupName": "<GpuAutoScalingGroup>",
        "MinSize": "1",
        "Recurrence": "30 7 * * MON-FRI",
        "TimeZone": "Europe/Paris",
    }
    assert stop == {**start, "MinSize": 0, "Recurrence": "0 19 * * MON-FRI"}


def test_the_crons_are_checked_by_the_template() -> None:
    pattern = re.compile(load_template()["Parameters"]["WarmStartCron"]["AllowedPattern"])
    for good in ("", "0 8 * * MON-FRI", "*/30 7-18 * * *", "0 8 * JAN-MAR MON"):
        assert pattern.match(good), good
    for bad in ("0 8 1 * *", "cron(0 8 ? * MON-FRI *)", "0 8 * *", "0 8 * * MON-FRI *"):
        assert not pattern.match(bad), bad


DEPLOY = r"""
import json, sys
from pathlib import Path
from storyflow_local import LocalCloud, LocalCloudConfig
template, state, parameters = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
config = LocalCloudConfig(
    template=template, stack_name="warm", state_file=state, write_state_file=False, parameters=parameters
)
with LocalCloud(config) as cloud:
    stack = cloud.client("cloudformation").describe_stacks(StackName="warm")["Stacks"][0]
    group = cloud.physical_id("GpuAutoScalingGroup")
    actions = cloud.client("autoscaling").describe_scheduled_actions(AutoScalingGroupName=group)
    print(json.dumps({
        "status": stack["StackStatus"],
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]},
        "actions": [
            {k: a.get(k) for k in ("ScheduledActionName", "MinSize", "Recurrence", "TimeZone")}
            for a in actions["ScheduledUpdateGroupActions"]
        ],
    }))
"""


def test_the_local_cloud_deploys_the_template_with_warm_capacity_set(tmp_path: Path) -> None:
    # Given the real template and the warm parameters set
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # When the local cloud deploys it (in its own process)
    result = subprocess.run(
        [sys.executable, "-c", DEPLOY, str(TEMPLATE), str(tmp_path / "local.json"), json.dumps(WARM)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    # Then the stack is complete with the parameters, and the GPU group has its two scheduled actions
    assert answer["status"] == "CREATE_COMPLETE"
    assert {k: answer["parameters"][k] for k in WARM} == WARM
    actions = {a["ScheduledActionName"]: a for a in answer["actions"]}
    assert set(actions) == {"GpuWarmStart", "GpuWarmStop"}
    assert actions["GpuWarmStart"]["Recurrence"] == WARM["WarmStartCron"]
    assert actions["GpuWarmStop"]["Recurrence"] == WARM["WarmStopCron"]
    assert {a["TimeZone"] for a in actions.values()} == {"Europe/Paris"}
    assert actions["GpuWarmStart"]["MinSize"] == 1 and actions["GpuWarmStop"]["MinSize"] == 0
