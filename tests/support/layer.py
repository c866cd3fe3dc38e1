"""Running code the way the Lambda runtime does, with only the layer's packages importable: shared by the
layer test (tests/template/test_layer.py) and the cold-start benchmark (bench/cold_start.py), so the bench
measures exactly the interpreter the test proves.

`ISOLATE` is the prelude of a child interpreter started with `python -S -I -c ...` and argv[1] = JSON with
`blocked` (top-level packages that must not import) and `path` (the code folders, the last entry being the
venv's site-packages, which goes after the standard library). It leaves `spec`, `blocked` and `attempts`
(the blocked names something tried to import) for the rest of the child's script.
"""

from __future__ import annotations

import re
from typing import Any

# Installed in the venv for the CLI, the local cloud, the containers and the tests; never in the layer.
BLOCKED = (
    "typer",
    "rich",
    "moto",
    "av",
    "numpy",
    "cv2",
    "torch",
    "requests",
    "yaml",
    "samtranslator",
    "sqlalchemy",
    "httpx",
    "aiohttp",
    "storyflow_cli",
    "storyflow_local",
    "storyflow_media",
    "storyflow_stereo",
    "storyflow_backend",
)

ISOLATE = r"""
import importlib.abc, json, sys

spec = json.loads(sys.argv[1])
blocked, attempts = frozenset(spec["blocked"]), []

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda layer)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
stdlib = [p for p in sys.path if p.startswith(sys.base_prefix) or p.startswith(sys.base_exec_prefix)]
sys.path[:] = [*spec["path"][:-1], *stdlib, spec["path"][-1]]
"""


def template_value(value: Any, parameters: dict[str, Any]) -> str:
    """A template value as a plausible string an import could read: parameter defaults, resource names,
    ARNs (nothing is deployed, so references become placeholders of the right shape)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name == "AWS::Region":
            return "us-east-1"
        if name in parameters:
            return str(parameters[name].get("Default", f"{name}-value"))
        return f"storyflow-{name}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        name = target[0] if isinstance(target, list) else str(target).split(".")[0]
        return f"arn:aws:placeholder:us-east-1:123456789012:{name}"
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return re.sub(
            r"\$\{([^}]+)\}", lambda m: template_value({"Ref": m[1].split(".")[0]}, parameters), text
        )
    return "placeholder"


def function_environment(template: dict[str, Any], logical_id: str | None) -> dict[str, str]:
    """A function's environment as the template gives it (Globals, then its own variables), resolved to
    placeholders; `logical_id=None` gives the Globals alone."""
    variables = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    if logical_id is not None:
        props = template["Resources"][logical_id].get("Properties") or {}
        variables.update((props.get("Environment") or {}).get("Variables") or {})
    parameters = template.get("Parameters", {})
    return {key: template_value(value, parameters) for key, value in variables.items()}
