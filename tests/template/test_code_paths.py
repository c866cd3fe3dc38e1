"""Every local path the template points at exists: CodeUri/ContentUri folders, each function's handler
module and function, DefinitionUri files. Neither sam nor cfn-lint catches a missing one."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE.get("Resources", {})
FUNCTION_GLOBALS: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})

FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r.get("Type") == "AWS::Serverless::Function")
LAYERS = sorted(n for n, r in RESOURCES.items() if r.get("Type") == "AWS::Serverless::LayerVersion")
STATE_MACHINES = sorted(n for n, r in RESOURCES.items() if r.get("Type") == "AWS::Serverless::StateMachine")
APIS = sorted(
    n for n, r in RESOURCES.items() if r.get("Type") in {"AWS::Serverless::Api", "AWS::Serverless::HttpApi"}
)


def _props(name: str) -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[name].get("Properties") or {}
    return props


def _function_prop(name: str, key: str) -> Any:
    """A function property, falling back to Globals.Function like SAM does."""
    return _props(name).get(key, FUNCTION_GLOBALS.get(key))


def _local_path(value: Any) -> str | None:
    """A repository-relative path, or None for S3 locations ({Bucket, Key} or s3://...)."""
    if isinstance(value, str) and not value.startswith("s3://"):
        return value
    return None


def _is_image(name: str) -> bool:
    return bool(_function_prop(name, "PackageType") == "Image")


def _defined_names(module: ast.Module) -> set[str]:
    """Module-level names: def/async def/class, assignments and imports (`from x import handler`)."""
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def test_the_template_has_code_to_check() -> None:
    # Given the template, Then it declares functions, a layer and a state machine (no vacuous checks).
    assert FUNCTIONS, "no AWS::Serverless::Function in template.yaml"
    assert LAYERS, "no AWS::Serverless::LayerVersion in template.yaml"
    assert STATE_MACHINES, "no AWS::Serverless::StateMachine in template.yaml"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_code_uri_exists(name: str) -> None:
    # Given a zip function, When SAM builds it, Then its CodeUri folder exists in the repository.
    if _is_image(name):
        context = (RESOURCES[name].get("Metadata") or {}).get("DockerContext")
        assert context and (ROOT / context).is_dir(), f"{name}: image function without a DockerContext folder"
        dockerfile = (RESOURCES[name].get("Metadata") or {}).get("Dockerfile", "Dockerfile")
        assert (ROOT / context / dockerfile).is_file(), f"{name}: {context}/{dockerfile} does not exist"
        return
    code_uri = _function_prop(name, "CodeUri")
    assert code_uri is not None, f"{name}: no CodeUri (and none in Globals.Function)"
    path = _local_path(code_uri)
    if path is None:
        pytest.skip(f"{name}: CodeUri is an S3 location")
    assert (ROOT / path).is_dir(), f"{name}: CodeUri {path!r} is not a folder of the repository"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_handler_is_defined(name: str) -> None:
    # Given a Python zip function with Handler "module.function", Then CodeUri/module.py defines function.
    if _is_image(name):
        pytest.skip(f"{name}: image function (the handler is the image's CMD)")
    runtime = str(_function_prop(name, "Runtime") or "")
    handler = _function_prop(name, "Handler")
    code_uri = _local_path(_function_prop(name, "CodeUri"))
    assert runtime.startswith("python"), f"{name}: runtime {runtime!r}; this check only knows Python handlers"
    assert isinstance(handler, str) and "." in handler, (
        f"{name}: Handler {handler!r} is not 'module.function'"
    )
    if code_uri is None:
        pytest.skip(f"{name}: CodeUri is an S3 location")
    module, _, function = handler.rpartition(".")
    base = ROOT / code_uri / Path(*module.split("."))
    candidates = [base.with_suffix(".py"), base / "__init__.py"]
    source = next((p for p in candidates if p.is_file()), None)
    assert source is not None, (
        f"{name}: Handler {handler!r} needs {candidates[0].relative_to(ROOT)} (or a package); it is missing"
    )
    tree = ast.parse(source.read_text(), filename=str(source))
    assert function in _defined_names(tree), (
        f"{name}: {source.relative_to(ROOT)} defines no module-level {function!r} (Handler {handler!r})"
    )


@pytest.mark.parametrize("name", LAYERS)
def test_layer_content_uri_exists(name: str) -> None:
    # Given a layer, Then its ContentUri folder exists.
    content_uri = _props(name).get("ContentUri")
    path = _local_path(content_uri)
    if path is None:
        pytest.skip(f"{name}: ContentUri is an S3 location")
    assert (ROOT / path).is_dir(), f"{name}: ContentUri {path!r} is not a folder of the repository"


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_state_machine_definition_exists(name: str) -> None:
    # Given a state machine, Then it has an inline Definition or its DefinitionUri file exists.
    props = _props(name)
    if "Definition" in props:
        return
    path = _local_path(props.get("DefinitionUri"))
    assert path is not None or "DefinitionUri" in props, f"{name}: neither Definition nor DefinitionUri"
    if path is None:
        pytest.skip(f"{name}: DefinitionUri is an S3 location")
    assert (ROOT / path).is_file(), f"{name}: DefinitionUri {path!r} does not exist"


@pytest.mark.parametrize("name", APIS)
def test_api_definition_exists(name: str) -> None:
    # Given an API with a local DefinitionUri (OpenAPI), Then that file exists.
    path = _local_path(_props(name).get("DefinitionUri"))
    if path is None:
        return
    assert (ROOT / path).is_file(), f"{name}: DefinitionUri {path!r} does not exist"
