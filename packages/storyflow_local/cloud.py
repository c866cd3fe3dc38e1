"""LocalCloud: the emulator, the adapters and the deployed template, started and stopped as one."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from storyflow_local import environ
from storyflow_local.cfn_gaps import CloudFormationGaps
from storyflow_local.clients import Clients
from storyflow_local.config import LocalCloudConfig
from storyflow_local.context import LocalContext
from storyflow_local.deploy import Deployment, deploy, load_template, prepare
from storyflow_local.programs import stack_image_programs
from storyflow_local.server import MotoServer

log = logging.getLogger("storyflow_local")

_active_lock = threading.Lock()
_active: LocalCloud | None = None


class LocalCloudError(RuntimeError):
    pass


def active() -> LocalCloud | None:
    """The LocalCloud running in this process, if any (test suites share one: moto's state is global)."""
    with _active_lock:
        return _active if _active is not None and _active._started else None


class LocalCloud:
    """`with LocalCloud(LocalCloudConfig(...)) as cloud:` → a deployed stack on 127.0.0.1.

    One per process at a time (moto keeps its state in module globals).
    """

    def __init__(self, config: LocalCloudConfig | None = None) -> None:
        self.config = config or LocalCloudConfig()
        self.server = MotoServer(self.config.region)
        self.ctx: LocalContext | None = None
        self.deployment: Deployment | None = None
        self.adapters: list[Any] = []
        self.api_urls: dict[str, str] = {}
        self.ready_seconds = 0.0
        self._started = False

    # --- lifecycle
    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        global _active
        with _active_lock:
            if _active is not None:
                raise LocalCloudError("a LocalCloud is already running in this process; stop it first")
            _active = self
        began = time.monotonic()
        try:
            template = load_template(self.config.template)
            parameters = self.config.stack_parameters(template.get("Parameters", {}))
            prepared = prepare(self.config.template, template, parameters, self.config.region)
            environ.install()
            self.server.start()
            self.ctx = LocalContext(
                config=self.config,
                endpoint_url=self.server.endpoint_url,
                environment=self.server.environment,
                clients=Clients(self.server.endpoint_url, self.config.region),
            )
            self._install_adapters(self.ctx)
            self.deployment = deploy(self.ctx.clients, prepared, self.config.stack_name)
            self.ctx.deployment = self.deployment
            self.ctx.code_dirs.update(self.deployment.artifacts.code_dirs)
            self.ctx.image_programs.update(
                stack_image_programs(
                    self.deployment.template,
                    {k: r.physical_id for k, r in self.deployment.resources.items()},
                    self.config.root,
                )
            )
            for adapter in self.adapters:
                on_deployed = getattr(adapter, "on_deployed", None)
                if on_deployed is not None:
                    on_deployed(self.deployment)
            self.api_urls = self.api.urls
            self.deployment.outputs = self._local_outputs(self.deployment.outputs)
            self._started = True
            self.ready_seconds = time.monotonic() - began
            if self.config.write_state_file:
                self.write_state_file()
            log.info("local cloud ready in %.2fs: %s", self.ready_seconds, self.endpoint_url)
            return self
        except BaseException:
            self.stop()
            raise

    def _install_adapters(self, ctx: LocalContext) -> None:
        from storyflow_local import bedrock_writer, moto_speed
        from storyflow_local.alarms import AlarmEvaluator
        from storyflow_local.dynamodb_adapter import DynamoDbAdapter
        from storyflow_local.ecs_agent import EcsAgent
        from storyflow_local.events_adapter import EventsAdapter
        from storyflow_local.http_shim import HttpShim
        from storyflow_local.lambda_adapter import LambdaAdapter
        from storyflow_local.launcher import Launcher
        from storyflow_local.s3_adapter import S3Adapter
        from storyflow_local.sagemaker import SageMakerAdapter
        from storyflow_local.sns_adapter import SnsAdapter
        from storyflow_local.sqs_poller import SqsPoller
        from storyflow_local.stepfunctions import StepFunctionsAdapter
        from storyflow_local.warm_start import WarmStart

        moto_speed.install(ctx.patches)
        CloudFormationGaps(ctx.patches).install()
        bedrock_writer.install(ctx.patches)  # Converse: a deterministic stand-in scene writer
        ctx.launcher = Launcher(
            {**os.environ, **ctx.environment, "PYTHONUNBUFFERED": "1"}, self.config.warm_programs
        )
        self.lambdas = LambdaAdapter(ctx)
        self.ecs = EcsAgent(ctx)
        self.sagemaker = SageMakerAdapter(ctx)
        self.api = HttpShim(ctx, self.lambdas)
        self.adapters = [
            WarmStart(ctx, self.sagemaker, self.lambdas),  # first: stopped last, after the runs it started
            DynamoDbAdapter(ctx),
            self.lambdas,
            StepFunctionsAdapter(ctx, self.lambdas, self.ecs.wait_stopped),
            SnsAdapter(ctx, self.lambdas),
            S3Adapter(ctx, self.lambdas),
            EventsAdapter(ctx, self.lambdas),
            SqsPoller(ctx, self.lambdas),
            self.ecs,
            self.sagemaker,
            AlarmEvaluator(ctx, self.lambdas),
            self.api,
        ]
        for adapter in self.adapters:
            adapter.install()

    def _local_outputs(self, outputs: dict[str, str]) -> dict[str, str]:
        """Stack outputs with execute-api URLs pointing at the local API shim."""
        assert self.deployment is not None
        result = dict(outputs)
        for api, url in self.api_urls.items():
            if api not in self.deployment.resources:
                continue
            api_id = self.deployment.resources[api].physical_id
            stage = url.rsplit("/", 1)[-1]
            remote = f"https://{api_id}.execute-api.{self.region}.amazonaws.com"
            local = url[: -len(stage) - 1]
            for key, value in result.items():
                if value.startswith(remote):
                    result[key] = local + value[len(remote) :]
        return result

    def stop(self) -> None:
        """Stop every thread and process, undo every patch, free the ports, forget moto's state."""
        global _active
        if self.ctx is not None:
            self.ctx.dispatcher.stop()  # loops and timers first; deliveries under way may finish
        for adapter in reversed(self.adapters):
            stopper = getattr(adapter, "stop", None)
            if stopper is not None:
                try:
                    stopper()
                except Exception:
                    log.exception("stopping %s failed", type(adapter).__name__)
        if self.ctx is not None:
            self.ctx.patches.undo()
        self.server.stop()
        environ.uninstall()
        self.adapters = []
        self._started = False
        with _active_lock:
            if _active is self:
                _active = None

    # --- what callers use
    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self.deployment.outputs) if self.deployment else {}

    @property
    def api_url(self) -> str:
        return next(iter(self.api_urls.values()), "")

    @property
    def environment(self) -> dict[str, str]:
        """The variables that point a shell (or a child process) at this local cloud."""
        return dict(self.server.environment)

    def wait_until_warm(self, timeout: float = 60.0) -> bool:
        """Block until what starts in the background after deploy (model servers answering /ping, the ECS
        programs' zygotes: `warm_start`) has started; False if `timeout` passed first."""
        from storyflow_local.warm_start import WarmStart

        return all(a.wait(timeout) for a in self.adapters if isinstance(a, WarmStart))

    def client(self, service: str) -> Any:
        if self.ctx is None:
            raise LocalCloudError("the local cloud is not running")
        return self.ctx.clients.get(service)

    def physical_id(self, logical_id: str) -> str:
        if self.deployment is None:
            raise LocalCloudError("nothing is deployed")
        return self.deployment.physical_id(logical_id)

    def state(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "api_url": self.api_url,
            "region": self.region,
            "outputs": self.outputs,
        }

    def write_state_file(self) -> Path:
        path = self.config.state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state(), indent=2) + "\n")
        return path


__all__ = ["LocalCloud", "LocalCloudConfig", "LocalCloudError", "load_template"]
