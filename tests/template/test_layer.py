"""The Lambda layer holds what is deployed and nothing else, and it imports on its own.

`CoreLayer` is built the way `sam build` does for `BuildMethod: python3.12`: its `ContentUri` folder
copied into `python/` (then `requirements.txt` pip-installed beside it). Every module of the layer's
`storyflow` package and every function's handler is then imported in a fresh interpreter that sees only
that folder, the standard library and the venv's site-packages, with the developer-only packages (the
CLI, the local cloud, the containers, typer, rich, moto, numpy, av ...) made unimportable. A layer
module that imports one of them fails here instead of in Lambda.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.layer import BLOCKED, ISOLATE, function_environment
from tests.support.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE.get("Resources", {})
FUNCTION_GLOBALS: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})

# What the layer's requirements.txt may name: boto3 comes with the Lambda runtime.
LAYER_REQUIREMENTS = {"pydantic", "aws-lambda-powertools"}
# Distributions a layer import may load from site-packages besides requirements.txt's closure: the
# runtime's boto3 (and its dependencies), and certifi, which botocore uses when present (try/except).
RUNTIME_REQUIREMENTS = ("boto3", "certifi")
# What sam build (aws-lambda-builders) leaves out when it copies a source folder.
SAM_EXCLUDES = ("__pycache__", "*.pyc", ".aws-sam", ".git", ".gitignore", ".venv", "*.egg-info")

# Runs in the isolated interpreter: argv[1] = JSON {"path": [...], "env": {...}, "package"|"handler"}.
PROBE = (
    ISOLATE
    + r"""
import importlib, os, pkgutil, traceback

os.environ.update(spec["env"])
errors, imported = {}, []

def load(name):
    try:
        importlib.import_module(name)
        imported.append(name)
    except BaseException:
        errors[name] = traceback.format_exc(limit=-4)

if "package" in spec:
    load(spec["package"])
    package = sys.modules.get(spec["package"])
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), spec["package"] + ".",
                                      onerror=lambda name: errors.setdefault(name, "walk failed")):
        load(info.name)
else:
    load(spec["handler"])
files = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items()) if "." not in n}
print(json.dumps({"imported": imported, "errors": errors, "blocked": sorted(set(attempts)), "files": files}))
"""
)


def _layer_content_uri() -> Path:
    layer = RESOURCES["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer.get("Metadata", {}).get("BuildMethod", "").startswith("python"), layer.get("Metadata")
    content_uri = layer["Properties"]["ContentUri"]
    assert isinstance(content_uri, str), content_uri
    return ROOT / content_uri


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer as `sam build` makes it: ContentUri copied to python/, minus the requirements file."""
    python = tmp_path_factory.mktemp("layer") / "python"
    shutil.copytree(_layer_content_uri(), python, ignore=shutil.ignore_patterns(*SAM_EXCLUDES))
    (python / "requirements.txt").unlink()
    size = sum(p.stat().st_size for p in python.rglob("*.py"))
    count = len(list(python.rglob("*.py")))
    print(f"\nCoreLayer: {count} .py files, {size} bytes of Python (before requirements)")
    return python


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def _environment(function: str | None) -> dict[str, str]:
    env = function_environment(TEMPLATE, function)
    env.setdefault("POWERTOOLS_SERVICE_NAME", (function or "layer").lower())
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    return env


def _probe(path: list[str], env: dict[str, str], **target: str) -> dict[str, Any]:
    spec = {"path": [*path, _site_packages()], "env": env, "blocked": BLOCKED, **target}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    result = subprocess.run(
        [sys.executable, "-S", "-I", "-c", PROBE, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=clean,
        cwd=path[0],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _requirement_lines() -> list[str]:
    lines = (_layer_content_uri() / "requirements.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


@lru_cache(maxsize=1)
def _deployed_distributions() -> frozenset[str]:
    """requirements.txt and the runtime's boto3, with every dependency (extras and markers honoured)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    found: set[str] = set()
    todo = [Requirement(line) for line in (*_requirement_lines(), *RUNTIME_REQUIREMENTS)]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        found.add(key[0])
        for line in distribution.requires or []:
            needed = Requirement(line)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return frozenset(found)


def _assert_clean(answer: dict[str, Any], layer: Path, code_dir: Path | None = None) -> None:
    failures = "\n".join(f"--- {name}\n{trace}" for name, trace in answer["errors"].items())
    assert not answer["errors"], f"cannot import in the Lambda layer:\n{failures}"
    ours = (str(layer), *([str(code_dir)] if code_dir else []))
    owners = metadata.packages_distributions()
    for name, file in answer["files"].items():
        if not file or file.startswith((sys.base_prefix, sys.base_exec_prefix)) or file.startswith(ours):
            continue
        assert file.startswith(_site_packages()), f"{name} came from {file}, outside the layer"
        dists = {canonicalize_name(d) for d in owners.get(name, [])}
        assert dists & _deployed_distributions(), (
            f"{name} ({file}, from {sorted(dists)}) is not in the layer: add it to "
            f"{_layer_content_uri().name}/requirements.txt or do not import it from the layer"
        )
    storyflow = answer["files"].get("storyflow")
    assert storyflow and storyflow.startswith(str(layer)), f"storyflow came from {storyflow}, not the layer"


def test_layer_holds_only_the_storyflow_package(layer: Path) -> None:
    top = sorted(p.name for p in layer.iterdir())
    assert top == ["storyflow"], f"the layer holds more than the storyflow package: {top}"
    names = {p.relative_to(layer).as_posix() for p in layer.rglob("*")}
    for forbidden in ("storyflow/cli.py", "storyflow/demo.py", "storyflow/samples.py", "storyflow/local"):
        assert forbidden not in names, f"{forbidden} is in the layer"
    assert not any(p.name in {"cli.py", "demo.py"} or p.name == "local" for p in layer.rglob("*"))


def test_layer_requirements_are_only_pydantic_and_powertools() -> None:
    names = {canonicalize_name(Requirement(line).name) for line in _requirement_lines()}
    assert names == LAYER_REQUIREMENTS


def test_every_layer_module_imports_without_developer_packages(layer: Path) -> None:
    answer = _probe([str(layer)], _environment(None), package="storyflow")
    _assert_clean(answer, layer)
    modules = sorted(answer["imported"])
    expected = {
        "storyflow." + p.relative_to(layer / "storyflow").with_suffix("").as_posix().replace("/", ".")
        for p in (layer / "storyflow").rglob("*.py")
        if p.name != "__init__.py"
    }
    assert expected <= set(modules), f"not imported: {sorted(expected - set(modules))}"
    print(f"imported {len(modules)} layer modules; blocked attempts: {answer['blocked'] or 'none'}")


def _functions() -> list[str]:
    names = []
    for name, resource in sorted(RESOURCES.items()):
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        if props.get("PackageType", FUNCTION_GLOBALS.get("PackageType")) == "Image":
            continue
        if isinstance(props.get("CodeUri"), str) and not props["CodeUri"].startswith("s3://"):
            names.append(name)
    return names


def test_template_has_functions_that_use_the_layer() -> None:
    assert _functions(), "no zip functions with a local CodeUri in template.yaml"


@pytest.mark.parametrize("function", _functions())
def test_handler_imports_from_the_layer_alone(layer: Path, function: str) -> None:
    props = RESOURCES[function]["Properties"]
    code_dir = (ROOT / props["CodeUri"]).resolve()
    handler = props.get("Handler", FUNCTION_GLOBALS.get("Handler"))
    module = handler.rpartition(".")[0]
    layers = props.get("Layers", FUNCTION_GLOBALS.get("Layers")) or []
    assert {"Ref": "CoreLayer"} in layers, f"{function} does not use CoreLayer"
    # As Lambda: the function's folder first (/var/task), then the layer (/opt/python).
    answer = _probe([str(code_dir), str(layer)], _environment(function), handler=module)
    _assert_clean(answer, layer, code_dir)
    assert answer["imported"] == [module]
