"""Step Functions task tokens and StopExecution as AWS has them (moto 5.2.5 gaps, found by probing).

* Every attempt of a `.waitForTaskToken` state gets its own task token. moto makes one token per state
  and reuses it on Retry, so a retried attempt "finishes" at once on the first attempt's answer. Here an
  attempt's token closes when the attempt ends (answered, failed, timed out or superseded).
* `SendTaskSuccess` / `SendTaskFailure` / `SendTaskHeartbeat`: an unknown token is `InvalidToken`; the
  token of a closed attempt, or of an execution that is no longer running, is `TaskTimedOut` (AWS: "the
  task token has either expired or the task associated with the token has already been closed"). moto
  accepts a failure for any execution's token and a repeated answer silently.
* `StopExecution`: the execution is ABORTED at once (the request's error and cause reach the
  ExecutionAborted event), every waiting token closes so its wait ends and no further state runs, the
  `.sync` ECS tasks the execution started are stopped (StopTask, as Step Functions does), and nothing
  that unwinds afterwards turns the execution FAILED. Its `.sync` child executions are stopped too
  (`sfn_nested`). moto keeps waiting until the token's timeout and
  reports a stopped Map as FAILED.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from storyflow_local import sfn_nested
from storyflow_local.patching import Patches

log = logging.getLogger("storyflow_local.stepfunctions")

CLOSED_TOKEN = "Task Timed Out: 'Provided task does not exist anymore'"


def execution_arn_of(env: Any) -> str:
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def close_endpoint(endpoint: Any) -> None:
    """No answer is taken on this token any more; whoever waits on it stops waiting."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerLeft

    if endpoint is None:
        return
    if endpoint.consumer_error is None:
        endpoint.report(CallbackConsumerLeft())
    endpoint.interrupt_all()


class SyncTasks:
    """The ECS tasks each execution's `ecs:runTask.sync` states wait on, so StopExecution can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, dict[str, tuple[str, Any]]] = {}

    def add(self, env: Any, cluster: str, task_arn: str, ecs: Any) -> None:
        execution = execution_arn_of(env)
        with self._lock:
            self._tasks.setdefault(execution, {})[task_arn] = (cluster, ecs)
        if not env.is_running():  # stopped while RunTask was in flight
            self.stop_all(execution, f"Execution {execution} was stopped")

    def discard(self, env: Any, task_arn: str) -> None:
        with self._lock:
            self._tasks.get(execution_arn_of(env), {}).pop(task_arn, None)

    def stop_all(self, execution: str, reason: str) -> None:
        with self._lock:
            tasks = self._tasks.pop(execution, {})
        for task_arn, (cluster, ecs) in tasks.items():
            # Off the request thread: StopExecution answers at once, the task stops on its own clock.
            threading.Thread(
                target=_stop_task, args=(ecs, cluster, task_arn, reason), daemon=True, name="sfn-stop-task"
            ).start()

    def clear(self) -> None:
        with self._lock:
            self._tasks.clear()


def _stop_task(ecs: Any, cluster: str, task_arn: str, reason: str) -> None:
    try:
        ecs.stop_task(cluster=cluster, task=task_arn, reason=reason[:255])
        log.info("stopped ECS task %s: %s", task_arn, reason)
    except Exception:
        log.exception("could not stop ECS task %s of a stopped execution", task_arn)


SYNC_TASKS = SyncTasks()


def _waits_for_token(state: Any) -> bool:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    # The condition moto's StateTaskServiceCallback._eval_body makes a token under.
    return bool(
        state._is_integration_pattern()
        and ResourceCondition.WaitForTaskToken in state._supported_integration_patterns
    )


def _token_per_attempt(original: Any) -> Any:
    def _evaluate_with_timeout(self: Any, env: Any) -> None:
        if not _waits_for_token(self):
            return original(self, env)  # type: ignore[no-any-return]
        context = env.states.context_object
        if int((context.context_object_data.get("State") or {}).get("RetryCount") or 0) > 0:
            env.callback_pool_manager.add(context.update_task_token())  # a retry: its own token
        token = (context.context_object_data.get("Task") or {}).get("Token")
        try:
            return original(self, env)  # type: ignore[no-any-return]
        finally:
            close_endpoint(env.callback_pool_manager.get(token) if token else None)

    return _evaluate_with_timeout


def _token_error(code: str, message: str) -> Exception:
    """An error the response layer answers with its code (moto's parser errors reach boto code-less)."""
    from moto.core.exceptions import AWSError

    return AWSError(message, exception_type=code, status=400)


def _open_endpoint(backend: Any, token: str) -> Any:
    """The endpoint still waiting on `token`, or the error AWS answers."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    for execution in backend._get_executions():
        env = getattr(getattr(execution, "exec_worker", None), "env", None)
        endpoint = env.callback_pool_manager.get(token) if env is not None else None
        if endpoint is None:
            continue
        if (
            execution.exec_status != ExecutionStatus.RUNNING
            or endpoint.consumer_error is not None
            or endpoint.get_outcome() is not None
        ):
            raise _token_error("TaskTimedOut", CLOSED_TOKEN)
        return endpoint
    raise _token_error("InvalidToken", "Invalid Token: 'Invalid token'")


def _send_task_success(backend: Any, task_token: str, outcome: str) -> Any:
    from moto.stepfunctions.parser.api import SendTaskSuccessOutput
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    _open_endpoint(backend, task_token).notify(CallbackOutcomeSuccess(callback_id=task_token, output=outcome))
    return SendTaskSuccessOutput()


def _send_task_failure(
    backend: Any, task_token: str, error: str | None = None, cause: str | None = None
) -> Any:
    from moto.stepfunctions.parser.api import SendTaskFailureOutput
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

    _open_endpoint(backend, task_token).notify(
        CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
    )
    return SendTaskFailureOutput()


def _send_task_heartbeat(backend: Any, task_token: str) -> Any:
    from moto.stepfunctions.parser.api import SendTaskHeartbeatOutput

    _open_endpoint(backend, task_token).notify_heartbeat()
    return SendTaskHeartbeatOutput()


def stop_execution(execution: Any, stop_date: dt.datetime, error: str | None, cause: str | None) -> None:
    """ABORTED now; waits end, no further state runs, `.sync` ECS tasks are stopped."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    if execution.exec_status != ExecutionStatus.RUNNING:
        return
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = stop_date
    worker = execution.exec_worker
    deadline = time.monotonic() + 5.0
    while worker is not None and worker.env is None and time.monotonic() < deadline:
        time.sleep(0.01)  # started a moment ago: its environment is being built
    env = worker.env if worker is not None else None
    if env is not None:
        env.set_stop(stop_date=stop_date, cause=cause, error=error)
        for endpoint in list(env.callback_pool_manager._pool.values()):
            close_endpoint(endpoint)
    SYNC_TASKS.stop_all(execution.exec_arn, f"Execution {execution.exec_arn} was stopped")
    sfn_nested.stop_children(execution.exec_arn, stop_date)
    log.info("execution %s stopped (%s: %s)", execution.exec_arn, error, cause)


def _stop_execution_response(response: Any) -> Any:
    """StopExecution with its error and cause (moto drops both)."""
    from moto.core.responses import ActionResult

    execution = response.stepfunction_backend.describe_execution(response._get_param("executionArn"))
    stop_execution(
        execution, dt.datetime.now(dt.UTC), response._get_param("error"), response._get_param("cause")
    )
    return ActionResult({"stopDate": execution.stop_date or dt.datetime.now(dt.UTC)})


def _keep_stopped(original: Any) -> Any:
    """A stopped program stays stopped: an error or timeout raised while it unwinds is not its outcome."""

    def keep(env: Any, *args: Any, **kwargs: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        if isinstance(env._program_state, ProgramStopped):
            return
        original(env, *args, **kwargs)

    return keep


def _reflect_keeping_abort(original: Any) -> Any:
    def reflect(comm: Any) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus

        execution = comm.execution
        aborted_at = execution.stop_date if execution.exec_status == ExecutionStatus.ABORTED else None
        original(comm)
        if aborted_at is not None:
            execution.exec_status = ExecutionStatus.ABORTED
            execution.stop_date = aborted_at

    return reflect


def install(patches: Patches) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    patches.set(
        StateTaskServiceCallback,
        "_evaluate_with_timeout",
        _token_per_attempt(StateTaskServiceCallback._evaluate_with_timeout),
    )
    patches.set(StepFunctionsParserBackend, "send_task_success", _send_task_success)
    patches.set(StepFunctionsParserBackend, "send_task_failure", _send_task_failure)
    patches.set(StepFunctionsParserBackend, "send_task_heartbeat", _send_task_heartbeat)
    patches.set(Execution, "stop", stop_execution)
    patches.set(StepFunctionResponse, "stop_execution", _stop_execution_response)
    patches.set(Environment, "set_error", _keep_stopped(Environment.set_error))
    patches.set(Environment, "set_timed_out", _keep_stopped(Environment.set_timed_out))
    patches.set(
        BaseExecutionWorkerCommunication,
        "_reflect_execution_status",
        _reflect_keeping_abort(BaseExecutionWorkerCommunication._reflect_execution_status),
    )
