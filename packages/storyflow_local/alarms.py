"""CloudWatch alarms, evaluated locally (moto stores alarms but never evaluates them).

Every tick, each metric alarm whose period (scaled by `time_scale`: 1/60 makes a 60 s period one
local second) has ended is evaluated over its last `EvaluationPeriods` periods from the emulated
metric data, honouring `DatapointsToAlarm`, `TreatMissingData`, the statistic and the comparison.
A state change (also one made with SetAlarmState) publishes the AWS alarm message to the SNS topics
(or invokes the Lambda functions) of the new state's actions and emits "CloudWatch Alarm State Change".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter

log = logging.getLogger("storyflow_local.alarms")

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}

COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def statistic(values: list[tuple[float, float, float, float]], name: str) -> float | None:
    """Aggregate (sum, count, min, max) samples; None when there are none."""
    if not values:
        return None
    total = sum(v[0] for v in values)
    count = sum(v[1] for v in values)
    key = name.lower()
    if key == "sum":
        return total
    if key == "samplecount":
        return count
    if key == "minimum":
        return min(v[2] for v in values)
    if key == "maximum":
        return max(v[3] for v in values)
    if key.startswith("p"):
        ordered = sorted(v[0] for v in values if v[1] == 1)
        if not ordered:
            return None
        rank = float(key[1:]) / 100 * (len(ordered) - 1)
        return ordered[math.floor(rank)]
    return total / count if count else None  # Average


@dataclass
class Decision:
    state: str | None  # None: keep the current state
    reason: str
    values: list[float | None]


def decide(
    values: list[float | None],
    threshold: float,
    comparison: str,
    datapoints_to_alarm: int,
    treat_missing: str,
) -> Decision:
    """The alarm state for the evaluated periods (oldest first), per CloudWatch's rules."""
    compare = COMPARISONS.get(comparison)
    if compare is None:
        return Decision(None, f"unsupported comparison {comparison}", values)
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    breaching = sum(1 for v in present if compare(v, threshold))
    if treat_missing == "breaching":
        breaching += missing
    elif treat_missing in ("missing", "ignore", "") and not present:
        if treat_missing == "ignore":
            return Decision(None, "no data: state kept (TreatMissingData=ignore)", values)
        return Decision("INSUFFICIENT_DATA", "Insufficient Data: no datapoints were received", values)
    word = {
        "GreaterThanThreshold": "greater than",
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }[comparison]
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in reversed(values))
    if breaching >= datapoints_to_alarm:
        return Decision(
            "ALARM",
            f"Threshold Crossed: {breaching} out of the last {len(values)} datapoints "
            f"[{shown}] were {word} the threshold ({threshold:g}).",
            values,
        )
    return Decision(
        "OK",
        f"Threshold Crossed: {len(values) - breaching} out of the last {len(values)} datapoints "
        f"[{shown}] were not {word} the threshold ({threshold:g}).",
        values,
    )


def _stamp(value: dt.datetime | None = None) -> str:
    value = value or dt.datetime.now(dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def alarm_message(alarm: Any, old_state: str, account_id: str, region: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS topics."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _stamp(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _stamp(alarm.state_updated_timestamp),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
            "Statistic": (alarm.extended_statistic or alarm.statistic or "").upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        },
    }


class AlarmEvaluator:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas
        self._anchors: dict[str, float] = {}  # alarm arn -> wall time its periods count from
        self._evaluated: dict[str, int] = {}  # alarm arn -> periods evaluated

    def install(self) -> None:
        from moto.cloudwatch.models import CloudWatchBackend

        evaluator = self
        original = CloudWatchBackend.set_alarm_state

        def set_alarm_state(
            backend: Any, alarm_name: str, reason: str, reason_data: str, state_value: str
        ) -> None:
            old = backend.alarms[alarm_name].state_value if alarm_name in backend.alarms else None
            original(backend, alarm_name, reason, reason_data, state_value)
            if old is not None and old != state_value:
                evaluator.notify(backend.alarms[alarm_name], old)

        self.ctx.patches.set(CloudWatchBackend, "set_alarm_state", set_alarm_state)
        self.ctx.dispatcher.loop("alarms", self.ctx.config.alarm_tick_seconds, self.tick)

    def _backend(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[self.ctx.account_id][self.ctx.region]

    def tick(self) -> None:
        backend = self._backend()
        now = time.time()
        for alarm in list(backend.alarms.values()):
            if not alarm.metric_name or alarm.rule:
                continue  # metric math and composite alarms are not evaluated locally
            anchor = self._anchors.setdefault(alarm.alarm_arn, now)
            period = max(float(alarm.period or 60) * self.ctx.scale, 0.05)
            completed = int((now - anchor) / period)
            if completed <= self._evaluated.get(alarm.alarm_arn, 0):
                continue
            self._evaluated[alarm.alarm_arn] = completed
            self.evaluate(backend, alarm, anchor, period, completed)

    def evaluate(self, backend: Any, alarm: Any, anchor: float, period: float, completed: int) -> None:
        periods = int(alarm.evaluation_periods or 1)
        values: list[float | None] = []
        wanted = {(d.name, d.value) for d in alarm.dimensions}
        data = [
            m
            for m in backend.get_all_metrics()
            if m.namespace == alarm.namespace
            and m.name == alarm.metric_name
            and {(d.name, d.value) for d in m.dimensions} == wanted
        ]
        for index in range(completed - periods, completed):
            if index < 0:
                values.append(None)
                continue
            start, end = anchor + index * period, anchor + (index + 1) * period
            samples = []
            for datum in data:
                stamp = datum.timestamp.replace(tzinfo=datum.timestamp.tzinfo or dt.UTC).timestamp()
                if start <= stamp < end:
                    samples.append(_sample(datum))
            values.append(statistic(samples, alarm.extended_statistic or alarm.statistic or "Average"))
        decision = decide(
            values,
            float(alarm.threshold),
            alarm.comparison_operator,
            int(alarm.datapoints_to_alarm or periods),
            alarm.treat_missing_data or "missing",
        )
        if decision.state is None or decision.state == alarm.state_value:
            return
        old = alarm.state_value
        reason_data = json.dumps(
            {
                "version": "1.0",
                "queryDate": _stamp(),
                "statistic": alarm.statistic,
                "period": alarm.period,
                "recentDatapoints": [v for v in values if v is not None],
                "threshold": alarm.threshold,
            }
        )
        alarm.update_state(decision.reason, reason_data, decision.state)
        log.info("alarm %s: %s → %s (%s)", alarm.name, old, decision.state, decision.reason)
        self.notify(alarm, old)

    def notify(self, alarm: Any, old_state: str) -> None:
        actions = {
            "ALARM": alarm.alarm_actions,
            "OK": alarm.ok_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }.get(alarm.state_value, [])
        self._emit_event(alarm, old_state)
        if not alarm.actions_enabled:
            return
        message = alarm_message(alarm, old_state, self.ctx.account_id, self.ctx.region)
        subject = (
            f'{alarm.state_value}: "{alarm.name}" in {REGION_NAMES.get(self.ctx.region, self.ctx.region)}'
        )
        for action in actions:
            if ":sns:" in action:
                from moto.sns.models import sns_backends

                region = action.split(":")[3]
                backend = sns_backends[self.ctx.account_id][region]
                self.ctx.dispatcher.submit(
                    f"alarm {alarm.name} → {action}",
                    backend.publish,
                    message=json.dumps(message),
                    arn=action,
                    subject=subject[:100],
                )
            elif ":lambda:" in action:
                self.lambdas.invoke_arn_async(action, self._lambda_event(alarm, old_state))
            else:
                log.info("alarm %s: action %s is not emulated", alarm.name, action)

    def _lambda_event(self, alarm: Any, old_state: str) -> dict[str, Any]:
        return {
            "source": "aws.cloudwatch",
            "alarmArn": alarm.alarm_arn,
            "accountId": self.ctx.account_id,
            "time": _stamp(),
            "region": self.ctx.region,
            "alarmData": {
                "alarmName": alarm.name,
                "state": {
                    "value": alarm.state_value,
                    "reason": alarm.state_reason,
                    "reasonData": alarm.state_reason_data,
                    "timestamp": _stamp(),
                },
                "previousState": {"value": old_state},
                "configuration": {"description": alarm.description},
            },
        }

    def _emit_event(self, alarm: Any, old_state: str) -> None:
        from moto.events.models import events_backends

        detail = {
            "alarmName": alarm.name,
            "state": {"value": alarm.state_value, "reason": alarm.state_reason, "timestamp": _stamp()},
            "previousState": {"value": old_state},
            "configuration": {"description": alarm.description},
        }
        entry = {
            "Source": "aws.cloudwatch",
            "DetailType": "CloudWatch Alarm State Change",
            "Detail": json.dumps(detail),
            "Resources": [alarm.alarm_arn],
        }
        try:
            events_backends[self.ctx.account_id][self.ctx.region].put_events([entry])
        except Exception:
            log.exception("could not emit the state change of alarm %s", alarm.name)


def _sample(datum: Any) -> tuple[float, float, float, float]:
    if hasattr(datum, "value"):
        value = float(datum.value)
        return value, 1.0, value, value
    return float(datum.sum_stat), float(datum.sample_count), float(datum.min_stat), float(datum.max_stat)
