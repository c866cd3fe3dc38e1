"""Run a Python Lambda handler in this process, the way the AWS Python runtime would.

* The handler module is imported from the function's code directory under a unique module name
  (one instance per function, cached), so functions never share module state by accident.
* Each invocation runs in its own thread with the function's environment as a thread-local overlay
  on `os.environ`, a context object like AWS's, and the function's Timeout enforced.
* An exception becomes the AWS error payload `{"errorMessage", "errorType", "requestId", "stackTrace"}`:
  Step Functions reads `errorType` as the task's Error, so `Retry`/`Catch` match on the class name.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from storyflow_local import emf, environ

log = logging.getLogger("storyflow_local.lambda")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    code_dir: Path
    timeout: float
    memory_mb: int
    environment: Mapping[str, str] = field(default_factory=dict)
    runtime: str = "python3.11"
    version: str = "$LATEST"


class LambdaContext:
    """The attributes and method of the AWS Python runtime's context object."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float) -> None:
        self.function_name = spec.name
        self.function_version = spec.version
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + request_id.replace("-", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Result:
    payload: str
    errored: bool
    request_id: str
    seconds: float


class HandlerError(Exception):
    """A failure of the runtime itself (import, handler lookup, marshalling), typed like AWS's."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _isolated(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


class HandlerLoader:
    """Imports handlers. The `isolated` packages (default: the project's `storyflow`) are imported afresh
    for each function, as if each function had its own process: module-level state (Powertools
    Logger/Metrics with the function's service name, cached clients and settings) is never shared."""

    def __init__(self, isolated: tuple[str, ...] = ("storyflow",)) -> None:
        self.isolated = isolated
        self._modules: dict[tuple[str, Path, str], ModuleType] = {}
        self._lock = threading.Lock()

    def load(self, spec: FunctionSpec) -> Callable[..., Any]:
        module_path, _, function = spec.handler.rpartition(".")
        if not module_path or not function:
            raise HandlerError(
                "Runtime.MalformedHandlerName", f"Bad handler '{spec.handler}': not enough values"
            )
        key = (spec.name, spec.code_dir, module_path)
        module = self._modules.get(key)  # a loaded handler never waits for another function's import
        if module is None:
            with self._lock:  # one import at a time: `_import` swaps the isolated packages in sys.modules
                module = self._modules.get(key)
                if module is None:
                    module = self._import(spec, module_path)
                    self._modules[key] = module
        handler = getattr(module, function, None)
        if not callable(handler):
            raise HandlerError(
                "Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{module_path}'"
            )
        return handler  # type: ignore[no-any-return]

    def _import(self, spec: FunctionSpec, module_path: str) -> ModuleType:
        relative = Path(*module_path.replace("/", ".").split("."))
        candidates = [spec.code_dir / relative.with_suffix(".py"), spec.code_dir / relative / "__init__.py"]
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            raise HandlerError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_path}': No module named '{module_path}'",
            )
        unique = "_lambda_" + re.sub(r"\W", "_", f"{spec.name}_{module_path}")
        module_spec = importlib.util.spec_from_file_location(unique, source)
        if module_spec is None or module_spec.loader is None:
            raise HandlerError("Runtime.ImportModuleError", f"Unable to import module '{module_path}'")
        module = importlib.util.module_from_spec(module_spec)
        code_dir = str(spec.code_dir)
        sys.path.insert(0, code_dir)  # siblings of the handler import like in /var/task
        sys.modules[unique] = module
        shared = {name: mod for name, mod in list(sys.modules.items()) if _isolated(name, self.isolated)}
        for name in shared:
            sys.modules.pop(name, None)
        try:
            with environ.overlay(function_environment(spec, "init")):
                module_spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(unique, None)
            raise HandlerError(
                "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {error}"
            ) from error
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(code_dir)
            for name in [n for n in list(sys.modules) if _isolated(n, self.isolated)]:
                sys.modules.pop(name, None)  # this function's own copies stay referenced by its module
            sys.modules.update(shared)
        return module

    def forget(self) -> None:
        with self._lock:
            for key in list(self._modules):
                sys.modules.pop(self._modules[key].__name__, None)
            self._modules.clear()


def function_environment(spec: FunctionSpec, request_id: str) -> dict[str, str]:
    """What the Lambda runtime sets, then the function's own variables (which win)."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{request_id}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env.update({k: str(v) for k, v in spec.environment.items()})
    env["AWS_SAM_LOCAL"] = "true"  # tells Powertools (and friends) this is a local emulation
    return env


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    error_type = error.error_type if isinstance(error, HandlerError) else type(error).__name__
    return {
        "errorMessage": str(error),
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__)[1:] if error.__traceback__ else [],
    }


OutputSink = Callable[[FunctionSpec, list[str]], None]


class LambdaRuntime:
    def __init__(
        self,
        base_environment: Mapping[str, str],
        timeout_cap: float | None = None,
        on_output: OutputSink | None = None,
        isolated_packages: tuple[str, ...] = ("storyflow",),
    ) -> None:
        self.base_environment = dict(base_environment)
        self.timeout_cap = timeout_cap
        self.on_output = on_output  # gets what the handler printed (e.g. EMF metrics)
        self.loader = HandlerLoader(isolated_packages)

    def preload(self, spec: FunctionSpec) -> bool:
        """Runs the function's init (its handler module's import, in its init environment) before its first
        invocation, as an execution environment that is already initialised (Provisioned Concurrency) has.
        What init prints goes where an invocation's output goes. False when the import fails: nothing is
        kept, so each invocation imports it again and fails with `Runtime.ImportModuleError` as on AWS."""
        env = {**self.base_environment, **function_environment(spec, "init")}
        try:
            with environ.overlay(env), emf.capture() as printed:
                self.loader.load(spec)
        except Exception as error:  # a broken function fails its invocations, not the deployment
            log.info("lambda %s not preloaded: %s", spec.name, error)
            return False
        if self.on_output is not None and printed:
            self.on_output(spec, printed)
        return True

    def invoke(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Result:
        request_id = request_id or str(uuid.uuid4())
        timeout = spec.timeout if self.timeout_cap is None else min(spec.timeout, self.timeout_cap)
        started = time.monotonic()
        deadline = started + timeout
        env = {**self.base_environment, **function_environment(spec, request_id)}
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with environ.overlay(env), emf.capture() as printed:
                    handler = self.loader.load(spec)
                    result = handler(event, LambdaContext(spec, request_id, deadline))
                if self.on_output is not None and printed:
                    self.on_output(spec, printed)
                try:
                    outcome["payload"] = json.dumps(result)
                except (TypeError, ValueError) as error:
                    raise HandlerError(
                        "Runtime.MarshalError", f"Unable to marshal response: {error}"
                    ) from error
            except BaseException as error:
                outcome["error"] = error

        worker = threading.Thread(target=run, name=f"lambda:{spec.name}:{request_id[:8]}", daemon=True)
        worker.start()
        worker.join(timeout)
        seconds = time.monotonic() - started
        if worker.is_alive():
            log.warning(
                "lambda %s %s timed out after %.2fs (its thread keeps running)",
                spec.name,
                request_id,
                timeout,
            )
            payload = {
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
                "requestId": request_id,
            }
            return Result(json.dumps(payload), True, request_id, seconds)
        if "error" in outcome:
            error = outcome["error"]
            log.info(
                "lambda %s %s failed in %.0fms: %s: %s",
                spec.name,
                request_id,
                seconds * 1000,
                type(error).__name__,
                error,
            )
            return Result(json.dumps(error_payload(error, request_id)), True, request_id, seconds)
        log.info("lambda %s %s ok in %.0fms", spec.name, request_id, seconds * 1000)
        return Result(outcome.get("payload", "null"), False, request_id, seconds)
