"""What starts when the stack is deployed, so that no job pays for it.

* The zygotes (`launcher`) of the programs the stack's ECS task definitions run, one after another in the
  background: a task's containers then fork from a process that has already imported them. Servers (a
  container with port mappings, e.g. the backend) start as new processes: they start once per task, and
  what inspects a container's processes by their environment in /proc (Fargate-like cleanup, tests)
  sees a server as the new process it would be.
* The model server of every SageMaker endpoint (`SageMakerAdapter.start_endpoints`): on AWS an endpoint
  is InService only once its container answers `/ping`, so the first invocation never waits for it.
* The listing of botocore's models that moto reads a service's model through, and the models of the
  stack's services (`moto_speed`).
* The clients the Step Functions interpreter calls the services of the stack's Task states with
  (`arn:aws:states:::dynamodb:updateItem`: DynamoDB): a state machine's first DynamoDB task took 42 ms,
  its next ones 7-9 ms, building that client first.
* Every Lambda function's init (`LambdaAdapter.preload_functions`): its handler module imported in its
  init environment, as in an execution environment initialised ahead of its first invocation
  (Provisioned Concurrency). A function whose import fails keeps failing each invocation as on AWS.
* Once all of that has started, the objects it left (moto's models, the functions' modules: about half a
  million) are moved out of the garbage collector's view (`gc.freeze`). Each Lambda, state machine and
  endpoint of this emulator shares one Python process, so a full collection stops all of them at once:
  over that heap one took 0.37 s in the middle of a 12-segment job (bench/stereo.py). `stop()` gives the
  frozen objects back to the collector, so a torn-down cloud's heap is freed as before.

Neither makes anything faster than AWS allows: a task still runs its program from its first line with its
own argv and environment, and an endpoint still runs its invocations at the concurrency it has.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from storyflow_local import moto_speed
from storyflow_local.context import LocalContext
from storyflow_local.ecs_agent import plan_containers

if TYPE_CHECKING:
    from storyflow_local.deploy import Deployment
    from storyflow_local.lambda_adapter import LambdaAdapter
    from storyflow_local.sagemaker import SageMakerAdapter


def ecs_programs(ctx: LocalContext) -> list[str]:
    """The program (absolute path) of each container of the stack's ECS task definitions that may run warm."""
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[ctx.account_id][ctx.region]
    programs: list[str] = []
    for revisions in list(backend.task_definitions.values()):
        for definition in list(revisions.values()):
            plans = plan_containers(definition.container_definitions, None, ctx)
            programs += [plan.argv[0] for plan in plans if plan.argv and plan.warm]
    return list(dict.fromkeys(programs))


_INTEGRATION = "arn:aws:states:::"


def task_services(definitions: Iterable[str]) -> list[str]:
    """The services the Task states of these ASL definitions integrate with, by their names in the ARN
    (`arn:aws:states:::ecs:runTask.sync` -> ecs, `arn:aws:states:::aws-sdk:s3:getObject` -> s3)."""
    from storyflow_local.stepfunctions import json_objects

    found: list[str] = []
    for definition in definitions:
        try:
            document = json.loads(definition)
        except ValueError:
            continue  # moto refuses it when it runs
        for node in json_objects(document):
            resource = node.get("Resource")
            if isinstance(resource, str) and resource.startswith(_INTEGRATION):
                parts = resource[len(_INTEGRATION) :].split(":")
                found.append(parts[1] if parts[0] == "aws-sdk" and len(parts) > 1 else parts[0])
    return list(dict.fromkeys(found))


def build_interpreter_clients(ctx: LocalContext) -> threading.Thread:
    """In the background: the interpreter's client of each service the stack's state machines call."""
    from moto.stepfunctions.responses import get_backend

    from storyflow_local.stepfunctions import interpreter_client

    def run() -> None:
        machines = list(get_backend(ctx.account_id, ctx.region).state_machines)
        for service in task_services(machine.definition for machine in machines):
            interpreter_client(ctx, service)

    thread = threading.Thread(target=run, name="sfn-clients", daemon=True)
    thread.start()
    return thread


class WarmStart:
    def __init__(self, ctx: LocalContext, sagemaker: SageMakerAdapter, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.sagemaker = sagemaker
        self.lambdas = lambdas
        self._threads: list[threading.Thread] = []
        self._stopped = False  # under _gc_lock: a freeze after stop() would keep a torn-down heap
        self._gc_lock = threading.Lock()

    def install(self) -> None:
        pass

    def on_deployed(self, deployment: Deployment) -> None:
        # What runs is read from the emulator's task definitions and endpoints; the models moto reads
        # are those of the stack's services.
        types = [resource.type for resource in deployment.resources.values()]
        self._threads.append(moto_speed.warm_service_models(types))
        self._threads.append(build_interpreter_clients(self.ctx))
        endpoints = self.sagemaker.start_endpoints()
        if endpoints is not None:
            self._threads.append(endpoints)
        if self.ctx.launcher is not None:
            self._threads.append(self.ctx.launcher.prewarm(ecs_programs(self.ctx)))
        if self.ctx.config.preload_functions:
            self._threads.append(self.lambdas.preload_functions())
        started = list(self._threads)
        freezer = threading.Thread(target=self._freeze, args=(started,), name="warm-start-gc", daemon=True)
        freezer.start()
        self._threads.append(freezer)

    def _freeze(self, started: list[threading.Thread]) -> None:
        for thread in started:
            thread.join()
        with self._gc_lock:
            if not self._stopped:
                gc.collect()
                gc.freeze()

    def wait(self, timeout: float) -> bool:
        """Block until everything has started (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        with self._gc_lock:
            self._stopped = True
            gc.unfreeze()
        if self.ctx.launcher is not None:
            self.ctx.launcher.stop()
