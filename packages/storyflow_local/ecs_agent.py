"""ECS agent: tasks started with RunTask run their containers as local processes.

For each container definition the argv is `EntryPoint + Command` (Command from the overrides if
given); without an EntryPoint the image's program comes first (see `programs`). The environment is
the task definition's plus the overrides', on top of what reaches the emulator. Output goes to the
local log, prefixed. When an essential container exits, the others get SIGTERM, and the task becomes
STOPPED with each container's `exitCode` and `stoppedReason` "Essential container in task exited",
exactly as on AWS: a container's stderr never reaches the task (neither `stoppedReason` nor a
container's `reason`; the last stderr lines of a failed container go to the local log only), so a
workflow learns a container's typed error the AWS way, from the error.json the container writes.
`ecs:runTask.sync` succeeds on 0 and fails otherwise. StopTask sends SIGTERM, then SIGKILL after the
stop timeout. Once its containers have exited, whatever process of the task is left (one that started a
session of its own, an orphan of a SIGKILLed container) is killed, as Fargate does. Every task runs
locally: the launch type or capacity provider only shows in the task's description. "ECS Task State
Change" events go to EventBridge.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from storyflow_local import launcher
from storyflow_local.context import LocalContext
from storyflow_local.programs import child_path, image_entrypoint, resolve_argv

log = logging.getLogger("storyflow_local.ecs")

TRANSITION = {"progression": "manual", "times": 10**9}  # moto never advances a task on its own


@dataclass
class ContainerPlan:
    name: str
    image: str
    argv: list[str]
    environment: dict[str, str]
    essential: bool = True
    stop_timeout: float | None = None
    error: str | None = None  # why it cannot start (then argv is empty)
    warm: bool = True  # may fork from a zygote (`launcher`); a server (port mappings) starts afresh


def _env_list(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(i.get("name")): str(i.get("value", "")) for i in items or [] if i.get("name")}


def plan_containers(
    container_definitions: list[dict[str, Any]], overrides: dict[str, Any] | None, ctx: LocalContext
) -> list[ContainerPlan]:
    by_name = {o.get("name"): o for o in (overrides or {}).get("containerOverrides", [])}
    plans = []
    for definition in container_definitions:
        name = str(definition.get("name", "container"))
        override = by_name.get(name, {})
        command = list(override.get("command") or definition.get("command") or [])
        entry_point = list(definition.get("entryPoint") or [])
        image = str(definition.get("image", ""))
        if not entry_point:
            program = image_entrypoint(image, ctx.bin_dir, ctx.image_commands())
            if program and not (command and command[0] == program[-1]):
                entry_point = program
        environment = {**_env_list(definition.get("environment")), **_env_list(override.get("environment"))}
        plan = ContainerPlan(
            name=name,
            image=image,
            argv=[],
            environment=environment,
            essential=bool(definition.get("essential", True)),
            stop_timeout=float(definition["stopTimeout"]) if definition.get("stopTimeout") else None,
            warm=not definition.get("portMappings"),
        )
        try:
            plan.argv = resolve_argv(entry_point + command, ctx.bin_dir)
        except FileNotFoundError as error:
            plan.error = f"CannotStartContainerError: {error}"
        plans.append(plan)
    return plans


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Proc:
    plan: ContainerPlan
    process: launcher.Process | None = None
    exit_code: int | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
    readers: list[threading.Thread] = field(default_factory=list)


class TaskRun:
    """The local processes of one ECS task."""

    def __init__(self, agent: EcsAgent, task: Any, family: str, plans: list[ContainerPlan]) -> None:
        self.agent = agent
        self.task = task
        self.family = family
        self.procs = [_Proc(plan) for plan in plans]
        self.stop_reason: str | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ecs-task-{task.id[:8]}", daemon=True)
        self._workdir = tempfile.mkdtemp(prefix=f"storyflow-task-{task.id[:8]}-")

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return not self.done.is_set()

    def _prefix(self, proc: _Proc) -> str:
        return f"ecs {self.family}/{proc.plan.name} {self.task.id[:8]}"

    def _run(self) -> None:
        ctx = self.agent.ctx
        try:
            failed = next((p for p in self.procs if p.plan.error), None)
            if failed is not None:
                self._finish(stop_code="TaskFailedToStart", reason=failed.plan.error or "")
                return
            for proc in self.procs:
                env = {
                    **os.environ.copy(),
                    **ctx.environment,
                    "PYTHONUNBUFFERED": "1",
                    "PATH": child_path(ctx.bin_dir),
                    "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                    "ECS_TASK_ARN": self.task.task_arn,
                    **proc.plan.environment,
                    **ctx.config.container_environment,
                }
                log.info("[%s] $ %s", self._prefix(proc), " ".join(proc.plan.argv))
                try:  # a new session of its own (as start_new_session=True): forked warm when it can be
                    proc.process = launcher.popen(
                        ctx.launcher if proc.plan.warm else None, proc.plan.argv, env, self._workdir, False
                    )
                except OSError as error:
                    self._terminate_all(0.0)
                    self._finish(stop_code="TaskFailedToStart", reason=f"CannotStartContainerError: {error}")
                    return
                for stream, is_err in ((proc.process.stdout, False), (proc.process.stderr, True)):
                    reader = threading.Thread(target=self._pump, args=(proc, stream, is_err), daemon=True)
                    reader.start()
                    proc.readers.append(reader)
            self.task.last_status = "RUNNING"
            self.task.started_at = _now()
            for container in self.task.containers:
                container.last_status = "RUNNING"
            self.agent.emit(self.task)
            self._wait()
        except Exception as error:  # never leave a task RUNNING because the agent failed
            log.exception("ecs agent failed on task %s", self.task.task_arn)
            self._terminate_all(0.0)
            self._finish(stop_code="TaskFailedToStart", reason=f"local agent error: {error}")

    def _pump(self, proc: _Proc, stream: IO[bytes] | None, is_err: bool) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if is_err and line.strip():
                proc.tail.append(line.strip())
            log.info("[%s] %s", self._prefix(proc), line)
        stream.close()

    def _wait(self) -> None:
        stopping = False
        while True:
            running = [p for p in self.procs if p.process is not None and p.exit_code is None]
            for proc in running:
                code = proc.process.poll() if proc.process else None
                if code is not None:
                    proc.exit_code = 128 - code if code < 0 else code  # killed by a signal: Docker's 128+N
            if all(p.exit_code is not None for p in self.procs if p.process is not None):
                # As on Fargate, a stopped task's processes all die with it: the ones a container put
                # in a session of its own too, and the orphans of a container that was SIGKILLed.
                kill_task_processes(self.task.task_arn)
                break
            essential_exited = any(p.plan.essential and p.exit_code is not None for p in self.procs)
            if essential_exited and not stopping:
                stopping = True
                threading.Thread(
                    target=self._terminate_all, args=(self._stop_timeout(),), daemon=True
                ).start()
            time.sleep(0.05)
        for proc in self.procs:
            for reader in proc.readers:
                reader.join(2.0)
        if self.stop_reason is not None:
            self._finish(stop_code="UserInitiated", reason=self.stop_reason)
            return
        for proc in self.procs:
            if proc.exit_code not in (0, None) and proc.tail:
                # Kept here only: on AWS stderr reaches CloudWatch Logs, never the stopped task.
                log.warning(
                    "[%s] exited %s; last stderr: %s", self._prefix(proc), proc.exit_code, proc.tail[-1]
                )
        self._finish(stop_code="EssentialContainerExited", reason="Essential container in task exited")

    def _stop_timeout(self) -> float:
        timeouts = [p.plan.stop_timeout for p in self.procs if p.plan.stop_timeout]
        return max(timeouts) if timeouts else self.agent.ctx.config.ecs_stop_timeout_seconds

    def stop(self, reason: str) -> None:
        """StopTask: SIGTERM every container, SIGKILL after the stop timeout."""
        self.stop_reason = reason
        self.task.desired_status = "STOPPED"
        self.task.last_status = "DEACTIVATING"
        self.task.stopping_at = _now()
        threading.Thread(target=self._terminate_all, args=(self._stop_timeout(),), daemon=True).start()

    def _terminate_all(self, timeout: float) -> None:
        alive = [p.process for p in self.procs if p.process is not None and p.process.poll() is None]
        for process in alive:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in alive:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("task %s: container did not stop in %.0fs; SIGKILL", self.task.id[:8], timeout)
                _signal_group(process, signal.SIGKILL)

    def _finish(self, stop_code: str, reason: str) -> None:
        task = self.task
        now = _now()
        for container, proc in zip(task.containers, self.procs, strict=False):
            container.last_status = "STOPPED"
            container.exitCode = proc.exit_code
            container.exit_code = proc.exit_code
            if proc.plan.error:  # a start failure (CannotPullContainerError...): AWS reports these
                container.reason = proc.plan.error
        task.stopped_reason = reason
        task.stop_code = stop_code
        task.desired_status = "STOPPED"
        task.stopped_at = now
        task.execution_stopped_at = now
        task.last_status = "STOPPED"
        codes = ", ".join(f"{p.plan.name}={p.exit_code}" for p in self.procs)
        log.info("[ecs %s %s] stopped (%s): %s", self.family, task.id[:8], codes, reason)
        self.done.set()
        shutil.rmtree(self._workdir, ignore_errors=True)
        self.agent.emit(task)


def _signal_group(process: launcher.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def task_processes(task_arn: str) -> list[int]:
    """Every live local process of a task: each inherits `ECS_TASK_ARN` from its container (Linux /proc;
    elsewhere none are found). A container's process group is not enough: a child may start its own."""
    marker = f"ECS_TASK_ARN={task_arn}\0".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/environ").exists() else ():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
    return found


def kill_task_processes(task_arn: str) -> None:
    """SIGKILL whatever is left of a task, as Fargate does when a task's containers stop."""
    for pid in task_processes(task_arn):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            log.info("task %s: killed leftover process %d", task_arn.rsplit("/", 1)[-1][:8], pid)


class EcsAgent:
    def __init__(self, ctx: LocalContext) -> None:
        self.ctx = ctx
        self.runs: dict[str, TaskRun] = {}
        self._lock = threading.Lock()

    def install(self) -> None:
        from moto.ecs.models import Container, EC2ContainerServiceBackend
        from moto.moto_api import state_manager

        agent = self
        original_run = EC2ContainerServiceBackend.run_task
        original_stop = EC2ContainerServiceBackend.stop_task
        state_manager.set_transition("ecs::task", TRANSITION)

        def run_task(
            backend: Any,
            cluster_str: str,
            task_definition_str: str,
            count: int,
            overrides: dict[str, Any] | None,
            started_by: str,
            tags: Any,
            launch_type: str | None,
            networking_configuration: Any = None,
            group: str | None = None,
            platform_version: str | None = None,
            capacity_provider_strategy: Any = None,
        ) -> Any:
            # Every task runs on this machine: place it like Fargate (no container instances needed).
            if networking_configuration and "awsvpcConfiguration" in networking_configuration:
                networking_configuration["awsvpcConfiguration"].setdefault("securityGroups", [])
            tasks = original_run(
                backend,
                cluster_str,
                task_definition_str,
                count,
                overrides,
                started_by,
                tags,
                "FARGATE",
                networking_configuration,
                group,
                platform_version,
                None,
            )
            definition = backend.describe_task_definition(task_definition_str)
            for task in tasks:
                _local_address(task, networking_configuration)
                task.launch_type = launch_type or ("" if capacity_provider_strategy else "FARGATE")
                if capacity_provider_strategy:
                    task.capacity_provider_name = capacity_provider_strategy[0].get("capacityProvider")
                task.containers = [
                    _container(Container, definition, d) for d in definition.container_definitions
                ]
                agent.launch(task, definition)
            return tasks

        def stop_task(backend: Any, cluster_str: str, task_str: str, reason: str) -> Any:
            run = agent.find(task_str)
            if run is None:
                return original_stop(backend, cluster_str, task_str, reason)
            if run.alive and run.stop_reason is None:
                run.stop(reason or "Task stopped by user")
            return run.task

        def requirements(task_definition: Any) -> dict[str, Any]:
            cpu = sum(int(d.get("cpu") or 0) for d in task_definition.container_definitions)
            memory = sum(
                int(d.get("memory") or d.get("memoryReservation") or 0)
                for d in task_definition.container_definitions
            )
            return {"CPU": cpu, "MEMORY": memory, "PORTS": [], "PORTS_UDP": []}

        from moto.ec2.models.elastic_network_interfaces import NetworkInterface

        patches = self.ctx.patches
        # moto's Task reads eni.private_dns_name, which only exists in a VPC with DNS hostnames.
        patches.set(NetworkInterface, "private_dns_name", None)
        patches.set(EC2ContainerServiceBackend, "run_task", run_task)
        patches.set(EC2ContainerServiceBackend, "stop_task", stop_task)
        patches.set(
            EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(requirements)
        )

    def launch(self, task: Any, definition: Any) -> None:
        task.last_status = "PENDING"
        task.desired_status = "RUNNING"
        task.created_at = _now()
        plans = plan_containers(definition.container_definitions, task.overrides, self.ctx)
        run = TaskRun(self, task, definition.family, plans)
        with self._lock:
            self.runs[task.task_arn] = run
        run.start()

    def wait_stopped(self, task_arn: str, timeout: float) -> bool:
        """Block until the task is STOPPED (True) or `timeout` passes (False): what a `.sync` wait polls for,
        without the polling (this agent stops every task, so it can say when)."""
        with self._lock:
            run = self.runs.get(task_arn)
        if run is None:
            time.sleep(timeout)
            return False
        return run.done.wait(timeout)

    def find(self, task: str) -> TaskRun | None:
        task_id = task.rsplit("/", 1)[-1]
        with self._lock:
            for arn, run in self.runs.items():
                if arn.endswith(task_id):
                    return run
        return None

    def emit(self, task: Any) -> None:
        """An "ECS Task State Change" event on the default bus, like ECS sends."""
        from moto.events.models import events_backends

        detail = {
            "clusterArn": task.cluster_arn,
            "taskArn": task.task_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "group": task.group,
            "startedBy": task.started_by,
            "launchType": task.launch_type,
            "overrides": task.overrides,
            "stoppedReason": task.stopped_reason or None,
            "stopCode": getattr(task, "stop_code", None),
            "createdAt": _iso(getattr(task, "created_at", None)),
            "startedAt": _iso(getattr(task, "started_at", None)),
            "stoppedAt": _iso(getattr(task, "stopped_at", None)),
            "containers": [
                {
                    "containerArn": c.container_arn,
                    "name": c.name,
                    "image": c.image,
                    "lastStatus": c.last_status,
                    "exitCode": getattr(c, "exit_code", None),
                    "reason": getattr(c, "reason", None),
                    "taskArn": task.task_arn,
                }
                for c in task.containers
            ],
        }
        detail = {k: v for k, v in detail.items() if v is not None}
        entry = {
            "Source": "aws.ecs",
            "DetailType": "ECS Task State Change",
            "Detail": json.dumps(detail),
            "Resources": [task.task_arn],
        }
        try:
            events_backends[self.ctx.account_id][self.ctx.region].put_events([entry])
        except Exception:
            log.exception("could not emit the ECS task state change of %s", task.task_arn)

    def stop(self) -> None:
        from moto.moto_api import state_manager

        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            if run.alive:
                run.stop_reason = run.stop_reason or "local cloud stopped"
                run._terminate_all(5.0)
        for run in runs:
            run.done.wait(5.0)
        state_manager.unset_transition("ecs::task")


def _local_address(task: Any, networking_configuration: dict[str, Any] | None) -> None:
    """An awsvpc task with a public IP gets 127.0.0.1 on its ENI: its containers listen on this machine."""
    config = (networking_configuration or {}).get("awsvpcConfiguration") or {}
    if config.get("assignPublicIp") != "ENABLED":
        return
    from moto.ec2.models import ec2_backends

    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "networkInterfaceId":
                backend = ec2_backends[task._account_id][task.region_name]
                backend.get_network_interface(detail["value"]).public_ip = "127.0.0.1"


def _container(container_cls: Any, definition: Any, container_definition: dict[str, Any]) -> Any:
    container = container_cls(definition)
    container.name = container_definition.get("name")
    container.image = container_definition.get("image")
    container.command = container_definition.get("command")
    container.environment = container_definition.get("environment")
    container.cpu = container_definition.get("cpu", 0)
    container.memory = container_definition.get("memory")
    container.last_status = "PENDING"
    container.exitCode = None
    container.exit_code = None
    return container


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if value else None
