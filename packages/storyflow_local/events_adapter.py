"""EventBridge: rules deliver to Lambda, Step Functions, SNS and ECS targets (moto raises
NotImplementedError for them), asynchronously, with `Input`, `InputPath` and `InputTransformer`;
disabled rules stay quiet; `rate(...)` schedules fire on the local clock (scaled by `time_scale`)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import time
import uuid
from typing import Any

from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter

log = logging.getLogger("storyflow_local.events")

HANDLED_SERVICES = ("lambda", "states", "sns", "ecs")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def iso_time(value: Any) -> str:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def rate_seconds(expression: str | None) -> float | None:
    match = _RATE.match((expression or "").strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def target_payload(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a target receives: the event, or its `Input`, `InputPath` or `InputTransformer` result."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse  # type: ignore[attr-defined]

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if target.get("InputTransformer"):
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        parser: Any = EventTemplateParser
        return parser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    return event


class EventsAdapter:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas
        self._next_fire: dict[str, float] = {}

    def install(self) -> None:
        from moto.events.models import Rule

        adapter = self
        original_send: Any = Rule.send_to_targets

        def send_to_targets(rule: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
            if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
                return  # a schedule-only rule fires on its schedule, never on events (moto: on every event)
            if not rule.event_pattern.matches_event(original_event):
                return
            event = dict(original_event)
            event["time"] = iso_time(event.get("time"))
            event.pop("ingestion-time", None)
            ours = [t for t in rule.targets if _service(t["Arn"]) in HANDLED_SERVICES]
            for target in ours:
                payload = target_payload(target, event)  # S3 events too: AWS transforms every delivery
                adapter.ctx.dispatcher.submit(
                    f"rule {rule.name} → {target['Arn']}", adapter.deliver, target, payload, rule
                )
            rest = [t for t in rule.targets if t not in ours]
            if rest:
                clone = copy.copy(rule)
                clone.targets = rest
                original_send(clone, event, transform_input)

        self.ctx.patches.set(Rule, "send_to_targets", send_to_targets)
        self.ctx.dispatcher.loop("schedules", 0.2, self.tick)

    def deliver(self, target: dict[str, Any], payload: Any, rule: Any) -> None:
        arn: str = target["Arn"]
        service = _service(arn)
        log.info("rule %s → %s", rule.name, arn)
        if service == "lambda":
            self.lambdas.invoke_arn_async(arn, payload)
        elif service == "states":
            from moto.stepfunctions.responses import get_backend

            get_backend(self.ctx.account_id, arn.split(":")[3]).start_execution(
                arn, str(uuid.uuid4()), json.dumps(payload)
            )
        elif service == "sns":
            from moto.sns.models import sns_backends

            message = payload if isinstance(payload, str) else json.dumps(payload)
            sns_backends[self.ctx.account_id][arn.split(":")[3]].publish(message=message, arn=arn)
        elif service == "ecs":
            self._run_task(arn, target.get("EcsParameters") or {})

    def _run_task(self, cluster_arn: str, params: dict[str, Any]) -> None:
        ecs = self.ctx.clients.get("ecs")
        request: dict[str, Any] = {
            "cluster": cluster_arn,
            "taskDefinition": params["TaskDefinitionArn"],
            "count": int(params.get("TaskCount", 1)),
            "startedBy": "events",
        }
        if params.get("LaunchType"):
            request["launchType"] = params["LaunchType"]
        ecs.run_task(**request)

    def tick(self) -> None:
        """Fire `rate()` rules whose (scaled) period has elapsed."""
        from moto.events.models import events_backends

        now = time.monotonic()
        backend = events_backends[self.ctx.account_id][self.ctx.region]
        for bus in list(backend.event_buses.values()):
            for rule in list(bus.rules.values()):
                seconds = rate_seconds(getattr(rule, "scheduled_expression", None))
                if seconds is None or rule.state != "ENABLED":
                    continue
                period = max(seconds * self.ctx.scale, 0.2)
                due = self._next_fire.setdefault(rule.arn, now + period)
                if now >= due:
                    self._next_fire[rule.arn] = now + period
                    event = {
                        "version": "0",
                        "id": str(uuid.uuid4()),
                        "detail-type": "Scheduled Event",
                        "source": "aws.events",
                        "account": self.ctx.account_id,
                        "time": time.time(),
                        "region": self.ctx.region,
                        "resources": [rule.arn],
                        "detail": {},
                    }
                    for target in rule.targets:
                        if _service(target["Arn"]) in HANDLED_SERVICES:
                            self.ctx.dispatcher.submit(
                                f"schedule {rule.name}",
                                self.deliver,
                                target,
                                target_payload(target, {**event, "time": iso_time(event["time"])}),
                                rule,
                            )


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""
