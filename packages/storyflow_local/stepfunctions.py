"""Step Functions adapter: fixes in moto's ASL interpreter (the executing backend) found by probing.

* Service integrations reach the emulator through cached clients (moto builds a boto3 client per
  call, on `localhost:$MOTO_PORT`).
* `ecs:runTask(.sync)` and `aws-sdk:*` tasks: PascalCase parameters are mapped onto the boto3 request
  shape, responses back to PascalCase (moto passes them through, so boto3 drops every parameter).
* `ecs:runTask.sync` fails the state (`States.TaskFailed`, Cause = the task description) when a
  container exits non-zero, like AWS; moto always succeeds.
* `aws-sdk:` service names as AWS spells them (`sagemakerruntime` → boto3's `sagemaker-runtime`).
* `SendTaskFailure` keeps its `cause`; `StartExecution` without a name gets a UUID (moto collides);
  `StartSyncExecution` runs the machine and waits.
* Task tokens (one per Retry attempt, closed tokens refused) and `StopExecution` (ABORTED at once, waits
  end, `.sync` ECS tasks stopped): see `sfn_lifecycle`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from storyflow_local import sfn_lifecycle, sfn_nested
from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter

PARSER_PACKAGE = "moto.stepfunctions.parser"

# A JSONPath is indefinite (its result is a list) only with a wildcard, slice, filter, union or deep scan.
_INDEFINITE = re.compile(r"\[\s*\*\s*\]|\.\*|\[[^\]]*:[^\]]*\]|\[\s*\?|\.\.|\[[^\]'\"]*,[^\]]*\]")


def is_indefinite(path: str) -> bool:
    return bool(_INDEFINITE.search(path))


@functools.lru_cache(maxsize=1024)
def _json_path(path: str) -> Any:
    """A parsed JSONPath (parsing runs a yacc parser; finding with the result never changes it)."""
    from jsonpath_ng.ext import parse  # type: ignore[attr-defined]

    return parse(path)


def extract_json(path: str, data: Any) -> Any:
    """JSONPath as Step Functions evaluates it: a definite path (`$.a[0].b`) gives one value, an
    indefinite one (`$.a[*].b`) a list. moto returns a list for any path through an index."""
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError

    matches = _json_path(path).find(data)
    if is_indefinite(path):
        return [match.value for match in matches]
    if not matches:
        raise NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


@functools.lru_cache(maxsize=64)
def _operations(service: str) -> dict[str, Any]:
    from botocore import xform_name

    model = _botocore_session().get_service_model(service)
    return {xform_name(name): model.operation_model(name) for name in model.operation_names}


@functools.lru_cache(maxsize=1)
def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@functools.lru_cache(maxsize=1)
def _available_services() -> frozenset[str]:
    return frozenset(_botocore_session().get_available_services())


def _boto_service_name(sdk_name: str) -> str:
    """AWS SDK integration names (`sagemakerruntime`) → boto3 service names (`sagemaker-runtime`)."""
    overrides = {"sfn": "stepfunctions", "states": "stepfunctions"}
    if sdk_name in overrides:
        return overrides[sdk_name]
    services = _available_services()
    if sdk_name in services:
        return sdk_name
    for service in services:
        if service.replace("-", "") == sdk_name.lower():
            return service
    return sdk_name


def interpreter_client(ctx: LocalContext, service: str, region: str | None = None) -> Any:
    """The client Step Functions' integrations call `service` with (its SDK or boto3 name): no parameter
    validation, no retries (the state's Retry is the retry), one per service and region."""
    return ctx.clients.get(_boto_service_name(service), region, validate=False, retries=False)


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    service = self._get_boto_service_name(boto_service_name)
    action = self._get_boto_service_action(service_action_name)
    operation = _operations(service).get(action)
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    service = self._get_boto_service_name(boto_service_name)
    action = self._get_boto_service_action(service_action_name)
    operation = _operations(service).get(action)
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


# Blocks until an ECS task stops or the timeout passes (the local ECS agent's `wait_stopped`): `.sync` waits
# wake when the task stops. None: moto's fixed 0.5 s polling.
_TASK_STOP_WAITER: Callable[[str, float], bool] | None = None
SYNC_POLL_SECONDS = 0.5  # the longest a `.sync` wait goes without checking its execution is still running


class _SyncResolver:
    """A `.sync` resolver with a `wait(timeout)` that returns early when the awaited work may be done."""

    def __init__(self, resolve: Callable[[], Any], task_arn: str) -> None:
        self.resolve = resolve
        self.task_arn = task_arn

    def __call__(self) -> Any:
        return self.resolve()

    def wait(self, timeout: float) -> None:
        waiter = _TASK_STOP_WAITER
        if waiter is None:
            time.sleep(timeout)
        else:
            waiter(self.task_arn, timeout)


def _eval_sync_event_driven(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's `.sync` loop sleeps 0.5 s between checks; with a resolver that can wait for its task, the
    check runs as soon as the task stops (and still every 0.5 s, so a stopped execution ends its wait).

    moto hands every ECS `.sync` state a callback endpoint too (ECS also supports `.waitForTaskToken`) and
    listens for a task token on it; on AWS a `.sync` state has no task token, so none is listened for."""

    def _eval_sync(
        self: Any,
        env: Any,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if not isinstance(sync_resolver, _SyncResolver):
            return original(
                self,
                env=env,
                sync_resolver=sync_resolver,
                timeout_seconds=timeout_seconds,
                callback_endpoint=callback_endpoint,
                heartbeat_endpoint=heartbeat_endpoint,
            )
        result: Any = None
        while env.is_running():
            result = sync_resolver()
            if result:
                break
            sync_resolver.wait(SYNC_POLL_SECONDS)
        return result

    return _eval_sync


def _ecs_task_failed(task: dict[str, Any]) -> bool:
    if task.get("stopCode") == "TaskFailedToStart":
        return True
    return any(c.get("exitCode") not in (0, None) for c in task.get("containers", []))


def _ecs_build_sync_resolver(
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> Callable[[], Any]:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    ecs: Any = getattr(state_task_service_ecs, "boto_client_for")(  # noqa: B009 - patched at run time
        service="ecs", region=resource_runtime_part.region, state_credentials=state_credentials
    )
    submission: dict[str, Any] = env.stack.pop()
    task_arn = submission["Tasks"][0]["TaskArn"]
    cluster_arn = submission["Tasks"][0]["ClusterArn"]
    sfn_lifecycle.SYNC_TASKS.add(env, cluster_arn, task_arn, ecs)  # StopExecution stops it

    def resolve() -> Any:
        described = ecs.describe_tasks(cluster=cluster_arn, tasks=[task_arn])
        task = described["tasks"][0]
        if task["lastStatus"] != "STOPPED":
            return None
        sfn_lifecycle.SYNC_TASKS.discard(env, task_arn)
        failed = _ecs_task_failed(task)
        self._normalise_response(response=described, service_action_name="describe_tasks")
        output = described["Tasks"][0]
        if failed:
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=to_json_str(output),
                        )
                    ),
                )
            )
        return output

    return _SyncResolver(resolve, task_arn)


def exceeds_tolerance(failed: int, total: int, tolerated_count: int, tolerated_percentage: float) -> bool:
    """Whether a Map Run failed: with no tolerance set any failure does; with one or both set, exceeding
    either does (moto cannot tell "unset" from 0, so 0 counts as unset when the other one is set)."""
    if failed == 0:
        return False
    if not tolerated_count and not tolerated_percentage:
        return True
    over_count = bool(tolerated_count) and failed > tolerated_count
    over_percentage = (
        bool(tolerated_percentage) and total > 0 and 100.0 * failed / total > tolerated_percentage
    )
    return over_count or over_percentage


def _map_run_with_tolerance(original: Callable[..., None]) -> Callable[..., None]:
    """moto's Distributed Map succeeds whatever its items do (the null output stands for a failed item);
    AWS fails the Map with States.ExceedToleratedFailureThreshold past the tolerated failures."""

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        from moto.stepfunctions.parser.api import HistoryEventType
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
            StatesErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        original(self, env, eval_input)
        if not env.is_running():  # stopped: the execution is ABORTED, its items' outcomes do not count
            return
        record = eval_input.map_run_record
        items = record.item_counter
        failed = items.failed.get() + items.timed_out.get() + items.aborted.get()
        if not exceeds_tolerance(
            failed,
            items.total.get(),
            int(record.tolerated_failure_count or 0),
            float(record.tolerated_failure_percentage or 0.0),
        ):
            return
        env.stack.pop()  # the outputs
        error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=error),
                event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    mapRunFailedEventDetails={
                        "error": error.to_name(),
                        "cause": "The specified tolerated failure threshold was exceeded",
                    }
                ),
            )
        )

    return _map_run


_APPLIED_HERE = ("ToleratedFailureCount declarations", "ToleratedFailurePercentage declarations")


def _not_applied_warning(record: logging.LogRecord) -> bool:
    """False for moto's parser warning that a Map's tolerated failures have no effect: here they have
    (`_map_run_with_tolerance`), so the warning, logged for every execution, would be wrong."""
    return not record.getMessage().startswith(_APPLIED_HERE)


def normalise_definition(definition: str) -> str:
    """ASL that AWS accepts but moto's grammar rejects: an integer `ToleratedFailurePercentage`."""
    try:
        document = json.loads(definition)
    except ValueError:
        return definition  # let the interpreter report it
    changed = False
    for node in json_objects(document):
        value = node.get("ToleratedFailurePercentage")
        if isinstance(value, int) and not isinstance(value, bool):
            node["ToleratedFailurePercentage"] = float(value)
            changed = True
    return json.dumps(document) if changed else definition


def json_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a parsed document (an ASL definition), outermost first; each may be changed in
    place as it is yielded (its children are read after)."""
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from json_objects(child)
    elif isinstance(node, list):
        for child in node:
            yield from json_objects(child)


class StepFunctionsAdapter:
    def __init__(
        self,
        ctx: LocalContext,
        lambdas: LambdaAdapter | None = None,
        task_stop_waiter: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.ctx = ctx
        self.lambdas = lambdas
        self.task_stop_waiter = task_stop_waiter

    def invoke_lambda(self, parameters: dict[str, Any], region: str, state_credentials: Any = None) -> Any:
        """Lambda tasks call the function directly (what the Lambda service does), not through HTTP."""
        from botocore.exceptions import ClientError
        from moto.awslambda.models import lambda_backends

        assert self.lambdas is not None
        name = str(parameters.get("FunctionName", ""))
        try:
            fn = lambda_backends[self.ctx.account_id][
                region
            ]._lambdas.get_function_by_name_or_arn_with_qualifier(name, parameters.get("Qualifier"))
        except Exception as error:
            response: Any = {
                "Error": {
                    "Code": "ResourceNotFoundException",
                    "Message": f"Function not found: {name} ({error})",
                },
                "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": str(uuid.uuid4())},
            }
            raise ClientError(response, "Invoke") from error
        raw = parameters.get("Payload")
        event = json.loads(raw) if raw else {}
        if parameters.get("InvocationType") == "Event":
            self.lambdas.invoke_async(fn, event)
            return {"StatusCode": 202, "Payload": ""}
        result = self.lambdas.invoke(fn, event)
        try:
            payload: Any = json.loads(result.payload)
        except ValueError:
            payload = result.payload
        answer: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}
        if result.errored:
            answer["FunctionError"] = "Unhandled"
        return answer

    def client_for(self, region: str, service: str, state_credentials: Any = None) -> Any:
        return interpreter_client(self.ctx, service, region)

    def install(self) -> None:
        import sys

        import moto.stepfunctions.parser.asl.utils.boto_client as boto_client_module
        import moto.stepfunctions.parser.asl.utils.json_path as json_path_module
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk,
            state_task_service_ecs,
        )
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend
        from moto.stepfunctions.responses import StepFunctionResponse

        patches = self.ctx.patches
        parser_log = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")
        patches.set(parser_log, "filters", [*parser_log.filters, _not_applied_warning])
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
            DistributedIterationComponent,
        )

        patches.set(
            DistributedIterationComponent,
            "_map_run",
            _map_run_with_tolerance(DistributedIterationComponent._map_run),
        )
        if self.lambdas is not None:
            from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

            patches.set(lambda_eval_utils, "_invoke_lambda_function", self.invoke_lambda)
        # Modules of the interpreter imported these functions by name: replace every binding.
        patches.set(boto_client_module, "boto_client_for", self.client_for)
        patches.set(json_path_module, "extract_json", extract_json)
        for name, module in list(sys.modules.items()):
            if not name.startswith(PARSER_PACKAGE) or module is None:
                continue
            if hasattr(module, "boto_client_for"):
                patches.set(module, "boto_client_for", self.client_for)
            if getattr(module, "extract_json", None) is not None and module is not json_path_module:
                patches.set(module, "extract_json", extract_json)

        ecs_cls = state_task_service_ecs.StateTaskServiceEcs
        sdk_cls = state_task_service_aws_sdk.StateTaskServiceAwsSdk
        for cls in (ecs_cls, sdk_cls):
            patches.set(cls, "_normalise_parameters", _normalise_parameters)
            patches.set(cls, "_normalise_response", _normalise_response)
        patches.set(ecs_cls, "_build_sync_resolver", _ecs_build_sync_resolver)
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
            StateTaskServiceCallback,
        )

        patches.set(
            StateTaskServiceCallback,
            "_eval_sync",
            _eval_sync_event_driven(StateTaskServiceCallback._eval_sync),
        )
        if self.task_stop_waiter is not None:
            patches.set(sys.modules[__name__], "_TASK_STOP_WAITER", self.task_stop_waiter)
        original_service_name = sdk_cls._get_boto_service_name

        def sdk_service_name(self: Any, boto_service_name: str | None = None) -> str:
            return _boto_service_name(original_service_name(self, boto_service_name))

        patches.set(sdk_cls, "_get_boto_service_name", sdk_service_name)

        original_create: Any = StepFunctionsParserBackend.create_state_machine
        original_update: Any = StepFunctionsParserBackend.update_state_machine

        def create_state_machine(backend: Any, name: str, definition: str, *args: Any, **kwargs: Any) -> Any:
            return original_create(backend, name, normalise_definition(definition), *args, **kwargs)

        def update_state_machine(
            backend: Any, arn: str, definition: str | None = None, *args: Any, **kwargs: Any
        ) -> Any:
            if definition is not None:
                definition = normalise_definition(definition)
            return original_update(backend, arn, definition, *args, **kwargs)

        patches.set(StepFunctionsParserBackend, "create_state_machine", create_state_machine)
        patches.set(StepFunctionsParserBackend, "update_state_machine", update_state_machine)

        original_start: Any = StepFunctionsParserBackend.start_execution

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: str | None = None,
            execution_input: str | None = None,
            trace_header: str | None = None,
        ) -> Any:
            return original_start(
                backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
            )

        patches.set(StepFunctionsParserBackend, "start_execution", start_execution)

        def send_task_failure(response: Any) -> Any:
            from moto.core.responses import EmptyResult

            response.stepfunction_backend.send_task_failure(
                response._get_param("taskToken"),
                error=response._get_param("error"),
                cause=response._get_param("cause"),
            )
            return EmptyResult()

        patches.set(StepFunctionResponse, "send_task_failure", send_task_failure)
        patches.set(StepFunctionResponse, "start_sync_execution", _start_sync_execution)
        sfn_lifecycle.install(patches)
        sfn_nested.install(patches)


def _start_sync_execution(response: Any) -> Any:
    """StartSyncExecution: start, wait for the end, answer like AWS (Express semantics, no history)."""
    from moto.core.responses import ActionResult

    backend = response.stepfunction_backend
    execution = backend.start_execution(
        response._get_param("stateMachineArn"),
        response._get_param("name") or str(uuid.uuid4()),
        response._get_param("input", if_none="{}"),
    )
    while execution.status == "RUNNING":
        time.sleep(0.01)
    result: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "status": "SUCCEEDED"
        if execution.status == "SUCCEEDED"
        else ("TIMED_OUT" if execution.status == "TIMED_OUT" else "FAILED"),
        "input": execution.execution_input,
        "billingDetails": {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100},
    }
    if execution.output is not None:
        result["output"] = (
            execution.output if isinstance(execution.output, str) else json.dumps(execution.output)
        )
    if execution.error is not None:
        result["error"] = execution.error
    if execution.cause is not None:
        result["cause"] = execution.cause
    return ActionResult(result)
