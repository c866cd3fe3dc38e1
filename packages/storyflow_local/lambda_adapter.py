"""Lambda adapter: every invoke in moto (API, Step Functions, SNS, S3, EventBridge, SQS) runs the real
handler in-process instead of a Docker container.

moto routes every invocation through `LambdaFunction._invoke_lambda`; that is replaced. `Event`
(asynchronous) invocations return 202 at once and run in the background, retried twice on error
like AWS (after 1 and 2 minutes, scaled by `time_scale`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from storyflow_local import emf
from storyflow_local.context import LocalContext
from storyflow_local.lambda_runtime import FunctionSpec, LambdaRuntime, Result

log = logging.getLogger("storyflow_local.lambda")
function_log = logging.getLogger("storyflow_local.function")  # what the handlers print

ASYNC_RETRY_DELAYS = (60.0, 120.0)


class _SearchPaths(list[str]):
    """A shared loader's search path: boto3 appends its data directory once per Session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def shared_data_loader() -> Any:
    """`botocore.session.Session._register_data_loader` with one `Loader` per data path for the process.

    Every handler builds its clients from a new boto3 Session (each function has its own copy of its
    modules, as in its own process); each Session's own Loader re-reads and re-parses the same service
    models, endpoint rules and partitions from disk. Here all functions share one Loader, which caches
    them: the same read-only data, parsed once, on one CPU that serves the whole local cloud.
    """
    from botocore.loaders import create_loader

    loaders: dict[str | None, Any] = {}
    lock = threading.Lock()

    def _register_data_loader(session: Any) -> None:
        def loader() -> Any:
            path = session.get_config_variable("data_path")
            with lock:
                found = loaders.get(path)
                if found is None:
                    found = create_loader(path)
                    found._search_paths = _SearchPaths(found.search_paths)  # type: ignore[attr-defined]
                    loaders[path] = found
            return found

        session._components.lazy_register_component("data_loader", loader)

    return _register_data_loader


class LambdaAdapter:
    def __init__(self, ctx: LocalContext) -> None:
        self.ctx = ctx
        self.runtime = LambdaRuntime(
            ctx.environment,
            ctx.config.lambda_timeout_cap_seconds,
            self._printed,
            ctx.config.lambda_isolated_packages,
        )
        self._extracted: dict[str, Path] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    # --- resolution of a moto LambdaFunction to something runnable
    def spec_for(self, fn: Any) -> FunctionSpec:
        return FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            handler=fn.handler or "app.handler",
            code_dir=self._code_dir(fn),
            timeout=float(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            environment=dict(fn.environment_vars or {}),
            runtime=str(fn.run_time or "python3.11"),
            version=str(getattr(fn, "version", "$LATEST")),
        )

    def _code_dir(self, fn: Any) -> Path:
        code = fn.code or {}
        local = self.ctx.code_dirs.get(code.get("S3Key", ""))
        if local is not None and local.is_dir():
            return local
        body: bytes = getattr(fn, "code_bytes", b"") or b""
        if not body:
            raise FileNotFoundError(f"no code for function {fn.function_name}")
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            if digest not in self._extracted:
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="storyflow-lambda-")
                target = Path(self._tmp.name) / digest
                with zipfile.ZipFile(io.BytesIO(body)) as archive:
                    archive.extractall(target)
                self._extracted[digest] = target
            return self._extracted[digest]

    def invoke(self, fn: Any, event: Any) -> Result:
        return self.runtime.invoke(self.spec_for(fn), event)

    def invoke_async(self, fn: Any, event: Any, attempt: int = 0) -> None:
        """An `Event` invocation: background, retried twice on a function error."""

        def run() -> None:
            result = self.invoke(fn, event)
            if result.errored and attempt < len(ASYNC_RETRY_DELAYS):
                delay = ASYNC_RETRY_DELAYS[attempt] * self.ctx.scale
                log.info("async invoke of %s failed; retry %d in %.1fs", fn.function_name, attempt + 1, delay)
                self.ctx.dispatcher.later(
                    delay, f"lambda retry {fn.function_name}", self.invoke_async, fn, event, attempt + 1
                )

        if attempt == 0:
            self.ctx.dispatcher.submit(f"lambda {fn.function_name}", run)
        else:
            run()

    def invoke_arn_async(self, function_arn: str, event: Any) -> None:
        """Asynchronous delivery to a function by ARN (SNS, S3, EventBridge); a missing one is logged."""
        from moto.awslambda.models import lambda_backends

        parts = function_arn.split(":")
        region = parts[3] if function_arn.startswith("arn:") else self.ctx.region
        qualifier = parts[7] if len(parts) == 8 else None
        name = ":".join(parts[:7]) if qualifier else function_arn
        try:
            fn = lambda_backends[self.ctx.account_id][
                region
            ]._lambdas.get_function_by_name_or_arn_with_qualifier(name, qualifier)
        except Exception as error:
            log.warning("asynchronous delivery to %s dropped: %s", function_arn, error)
            return
        self.invoke_async(fn, event)

    def preload_functions(self) -> threading.Thread:
        """In the background: every deployed function's init (`LambdaRuntime.preload`), one after another
        (the loader imports one handler at a time), so that no invocation pays for its handler's import.
        An invocation arriving first imports its handler itself, under the same lock, exactly once."""
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[self.ctx.account_id][self.ctx.region]
        functions = list(backend.list_functions())

        def run() -> None:
            for fn in functions:
                try:
                    spec = self.spec_for(fn)
                except FileNotFoundError as error:  # no code: its invocations report it
                    log.info("lambda %s not preloaded: %s", fn.function_name, error)
                    continue
                self.runtime.preload(spec)

        thread = threading.Thread(target=run, name="lambda-preload", daemon=True)
        thread.start()
        return thread

    def _printed(self, spec: FunctionSpec, lines: list[str]) -> None:
        """What a handler printed: its log lines go to the local log (its CloudWatch Logs stream in AWS),
        and its EMF lines become CloudWatch metrics (what CloudWatch Logs does with them in AWS)."""
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[self.ctx.account_id][self.ctx.region]
        for line in lines:
            data = emf.metric_data(line)
            for namespace, datum in data:
                backend.put_metric_data(namespace, [datum])
            if not data:
                function_log.info("%s: %s", spec.name, line)

    # --- moto patches
    def install(self) -> None:
        emf.install()
        import botocore.session
        from moto.awslambda.models import LambdaFunction

        self.ctx.patches.set(botocore.session.Session, "_register_data_loader", shared_data_loader())

        adapter = self
        original_invoke = LambdaFunction.invoke

        def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            if isinstance(event, str):
                event = json.loads(event or "{}")
            result = adapter.invoke(fn, {} if event is None else event)
            return result.payload, result.errored, ""

        def invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
            invocation_type = (request_headers or {}).get("x-amz-invocation-type", "RequestResponse")
            if invocation_type == "Event":
                adapter.invoke_async(fn, json.loads(body) if body else {})
                return ""
            if invocation_type == "DryRun":
                return ""
            return original_invoke(fn, body, request_headers, response_headers)

        self.ctx.patches.set(LambdaFunction, "_invoke_lambda", _invoke_lambda)
        self.ctx.patches.set(LambdaFunction, "invoke", invoke)

    def stop(self) -> None:
        emf.uninstall()
        self.runtime.loader.forget()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
