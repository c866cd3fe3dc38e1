"""Each state machine's ASL and its DefinitionSubstitutions agree both ways, and the ASL, with every
placeholder replaced by a value shaped like what CloudFormation will put there, passes asl-validator."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import ROOT, load_template
from tests.template.conftest import require_tool, tool_env

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE.get("Resources", {})
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE.get("Parameters", {})
STATE_MACHINES = sorted(n for n, r in RESOURCES.items() if r.get("Type") == "AWS::Serverless::StateMachine")

PLACEHOLDER = re.compile(r"\$\{([^}\s]+)\}")

REGION, ACCOUNT, PARTITION, STACK = "us-east-1", "123456789012", "aws", "storyflow-test"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0f0f0f0f-0000-0000-0000-0000",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": "",
}


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT}:{resource}"


def _physical_name(logical_id: str) -> str:
    return f"{STACK}-{logical_id}-ABC123".lower() if logical_id else STACK


def _ref(logical_id: str) -> str:
    """What `!Ref X` gives for a resource type (https://docs.aws.amazon.com ... return values)."""
    if logical_id in PSEUDO:
        return PSEUDO[logical_id]
    if logical_id in PARAMETERS:
        param = PARAMETERS[logical_id]
        default = param.get("Default")
        if default not in (None, ""):
            return ",".join(map(str, default)) if isinstance(default, list) else str(default)
        return "1" if param.get("Type") == "Number" else f"dummy-{logical_id.lower()}"
    kind = RESOURCES.get(logical_id, {}).get("Type", "")
    name = _physical_name(logical_id)
    by_type = {
        "AWS::SNS::Topic": _arn("sns", name),
        "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
        "AWS::ECS::TaskDefinition": _arn("ecs", f"task-definition/{name}:1"),
        "AWS::EC2::SecurityGroup": "sg-0123456789abcdef0",
        "AWS::EC2::Subnet": "subnet-0123456789abcdef0",
        "AWS::EC2::VPC": "vpc-0123456789abcdef0",
        "AWS::Serverless::StateMachine": _arn("states", f"stateMachine:{name}"),
        "AWS::StepFunctions::StateMachine": _arn("states", f"stateMachine:{name}"),
        "AWS::Serverless::LayerVersion": _arn("lambda", f"layer:{name}:1"),
        "AWS::ECS::CapacityProvider": name,
        "AWS::SageMaker::Endpoint": _arn("sagemaker", f"endpoint/{name}"),
        "AWS::CloudWatch::Alarm": name,
    }
    return by_type.get(kind, name)


def _get_att(logical_id: str, attribute: str) -> str:
    kind = RESOURCES.get(logical_id, {}).get("Type", "")
    name = _physical_name(logical_id)
    if attribute == "Arn":
        by_type = {
            "AWS::Serverless::Function": _arn("lambda", f"function:{name}"),
            "AWS::Lambda::Function": _arn("lambda", f"function:{name}"),
            "AWS::ECS::Cluster": _arn("ecs", f"cluster/{name}"),
            "AWS::DynamoDB::Table": _arn("dynamodb", f"table/{name}"),
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": _arn("sqs", name),
            "AWS::Events::EventBus": _arn("events", f"event-bus/{name}"),
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": _arn("logs", f"log-group:{name}:*"),
            "AWS::Serverless::StateMachine": _arn("states", f"stateMachine:{name}"),
            "AWS::StepFunctions::StateMachine": _arn("states", f"stateMachine:{name}"),
        }
        return by_type.get(kind, _arn("unknown", name))
    if attribute == "QueueUrl":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return name


def dummy_value(expr: Any) -> str:
    """A plausible deploy-time value for a DefinitionSubstitutions entry (an intrinsic or a literal)."""
    if isinstance(expr, bool):
        return str(expr).lower()
    if isinstance(expr, int | float | str):
        return str(expr)
    if isinstance(expr, list):
        return ",".join(dummy_value(e) for e in expr)
    if isinstance(expr, dict) and len(expr) == 1:
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return _ref(arg)
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return _get_att(logical_id, attribute)
        if fn == "Fn::If":
            return dummy_value(arg[1])
        if fn == "Fn::Join":
            sep, items = arg
            parts = items if isinstance(items, list) else dummy_value(items).split(",")
            return str(sep).join(p if isinstance(p, str) else dummy_value(p) for p in parts)
        if fn == "Fn::Select":
            index, items = arg
            values = items if isinstance(items, list) else dummy_value(items).split(",")
            return dummy_value(values[int(dummy_value(index))])
        if fn == "Fn::Split":
            return dummy_value(arg[1])
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(match: re.Match[str]) -> str:
                key = match.group(1)
                if key in variables:
                    return dummy_value(variables[key])
                if "." in key and key.split(".", 1)[0] in RESOURCES:
                    return _get_att(*key.split(".", 1))
                return _ref(key)

            return PLACEHOLDER.sub(sub, text)
        if fn == "Fn::ImportValue":
            return "imported-value"
    raise AssertionError(
        f"no dummy value for {expr!r}; teach tests/template/test_state_machines.py this form"
    )


def _definition_text(name: str) -> str:
    props = RESOURCES[name].get("Properties") or {}
    if "Definition" in props:
        return json.dumps(props["Definition"])
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str) or not (ROOT / uri).is_file():
        pytest.skip(f"{name}: no local definition file (test_code_paths reports it)")
    return (ROOT / uri).read_text()


def _substitutions(name: str) -> dict[str, Any]:
    subs: dict[str, Any] = (RESOURCES[name].get("Properties") or {}).get("DefinitionSubstitutions") or {}
    return subs


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_every_placeholder_has_a_substitution(name: str) -> None:
    # Given the ASL's ${Name} placeholders, Then each is provided by DefinitionSubstitutions.
    used = set(PLACEHOLDER.findall(_definition_text(name)))
    missing = sorted(used - set(_substitutions(name)))
    assert not missing, f"{name}: placeholders with no DefinitionSubstitutions entry: {missing}"


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_every_substitution_is_used(name: str) -> None:
    # Given DefinitionSubstitutions, Then each entry appears as ${Name} in the ASL (no dead wiring).
    used = set(PLACEHOLDER.findall(_definition_text(name)))
    unused = sorted(set(_substitutions(name)) - used)
    assert not unused, f"{name}: DefinitionSubstitutions never used in the ASL: {unused}"


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_asl_is_valid_after_substitution(name: str, tmp_path: Path) -> None:
    # Given the ASL with every placeholder replaced by a realistic value (ARNs, names, numbers),
    # When asl-validator checks it (schema, JSONPath, Resource ARNs), Then it is valid.
    validator = require_tool("asl-validator")
    subs = {key: dummy_value(expr) for key, expr in _substitutions(name).items()}
    text = PLACEHOLDER.sub(lambda m: subs.get(m.group(1), m.group(0)), _definition_text(name))
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{name}: the definition is not JSON once substituted: {exc}", pytrace=False)
    path = tmp_path / f"{name}.asl.json"
    path.write_text(json.dumps(definition, indent=2))
    proc = subprocess.run(
        [validator, "--json-path", str(path)],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{name}: asl-validator rejects the substituted definition ({path}):\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
