"""Nested executions (`states:startExecution.sync` / `.sync:2`) as AWS runs them.

moto's interpreter starts the child and polls DescribeExecution until it ends, which is what AWS does
from the caller's side. What it lacks: when the parent is stopped (StopExecution, or a cancel through
the API), AWS stops the child executions its `.sync` states wait on (StopExecution, error
`States.Aborted`-like cause naming the parent), and so on down. Here each `.sync` child is recorded
under the execution whose state started it, and `stop_children` (called when an execution is stopped)
stops them, recursively through their own children.

The `states:` integration also reaches the emulator with PascalCase parameters and reads its answers
PascalCase (`ExecutionArn`; DescribeExecution's `Status`, `Output`, ... in a `.sync:2` result), as the
ECS and SDK integrations do in `stepfunctions`.

Invariants: a child is recorded before its parent's state starts waiting on it; a child recorded after
its parent stopped is stopped at once; stopping a finished child is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from storyflow_local.patching import Patches

log = logging.getLogger("storyflow_local.stepfunctions")


class NestedExecutions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, set[str]] = {}

    def add(self, parent: str, child: str) -> None:
        with self._lock:
            self._children.setdefault(parent, set()).add(child)

    def children(self, parent: str) -> list[str]:
        with self._lock:
            return sorted(self._children.get(parent, ()))

    def pop(self, parent: str) -> list[str]:
        with self._lock:
            return sorted(self._children.pop(parent, ()))


NESTED = NestedExecutions()


def _backend_of(execution_arn: str) -> Any:
    """The Step Functions backend of an execution ARN's account and region."""
    from moto.stepfunctions.models import stepfunctions_backends

    parts = execution_arn.split(":")
    return stepfunctions_backends[parts[4]][parts[3]]


def stop_children(parent: str, stop_date: dt.datetime) -> None:
    """Stop every `.sync` child of `parent` still running (their own children follow, through the
    patched Execution.stop)."""
    for child in NESTED.pop(parent):
        try:
            execution = _backend_of(child).describe_execution(child)
        except Exception:  # the child never came to exist: nothing to stop
            log.warning("nested execution %s of %s not found to stop", child, parent)
            continue
        execution.stop(
            stop_date=stop_date, error="States.Aborted", cause=f"Parent execution {parent} was stopped"
        )


def _recording(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a `.sync`/`.sync:2` resolver builder: the started child (on top of the env's stack, which
    the builder pops) is recorded under the execution that started it."""

    def build(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        from storyflow_local.sfn_lifecycle import execution_arn_of

        submitted = env.stack[-1] if env.stack else {}
        child = submitted.get("ExecutionArn") if isinstance(submitted, dict) else None
        if child:
            parent = execution_arn_of(env)
            NESTED.add(parent, str(child))
            if not env.is_running():  # the parent stopped while StartExecution was in flight
                stop_children(parent, dt.datetime.now(dt.UTC))
        return original(self, env, *args, **kwargs)

    return build


def _boto_cased(original: Callable[..., Any]) -> Callable[..., Any]:
    """StartExecution's parameters onto boto3's request shape (moto leaves them PascalCase, which the
    client refuses), after moto's own step (Input serialised to a JSON string)."""

    def normalise(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        from storyflow_local.stepfunctions import _normalise_parameters

        original(self, parameters, *args, **kwargs)
        _normalise_parameters(self, parameters, *args, **kwargs)

    return normalise


def _answer_cased(original: Callable[..., Any]) -> Callable[..., Any]:
    """StartExecution's answer as the state sees it on AWS (`ExecutionArn`, `StartDate`)."""

    def evaluate(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        if env.stack and isinstance(env.stack[-1], dict):
            self._normalise_response(env.stack[-1])

    return evaluate


def install(patches: Patches) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    from storyflow_local.stepfunctions import _normalise_response

    patches.set(
        StateTaskServiceSfn, "_normalise_parameters", _boto_cased(StateTaskServiceSfn._normalise_parameters)
    )
    patches.set(StateTaskServiceSfn, "_normalise_response", _normalise_response)
    patches.set(
        StateTaskServiceSfn, "_eval_service_task", _answer_cased(StateTaskServiceSfn._eval_service_task)
    )
    for name in ("_build_sync_resolver", "_build_sync2_resolver"):
        patches.set(StateTaskServiceSfn, name, _recording(getattr(StateTaskServiceSfn, name)))
