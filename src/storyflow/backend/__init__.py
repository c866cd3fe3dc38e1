"""On-demand backend: `GET /start` (`ensure_running`) and the idle stopper (`on_alarm`, `on_task_stopped`).

One item (`task_id = "main"`) in the TaskState table describes the backend's Fargate task:

    starting --RunTask ok--> running --alarm, expired--> stopping --ECS STOPPED--> stopped
       |                        |                                                   ^
       +--RunTask failed--------+--task died on its own (ECS event or DescribeTasks)+

Every status change is a conditional write on `version` (bumped by each change), so of N concurrent
`/start` calls exactly one wins the claim and calls RunTask; the others extend `expires_at` of the
task being started. Extending never bumps `version`: the stopper's conditional write checks
`expires_at < now` itself, so a `/start` that extends first always wins against a stop.

Modules: `models` (settings, the item, the answers, names template.yaml agrees on), `store` (the item's
conditional writes), `ecs` (RunTask/DescribeTasks/StopTask, the public IP), `start` (`/start`),
`idle_stop` (the TaskPing alarm and ECS STOPPED events). This package exports what the handlers use.
"""

from storyflow.backend.idle_stop import on_alarm, on_task_stopped
from storyflow.backend.models import BackendSettings, BackendStatus, MonitorOutcome
from storyflow.backend.start import ensure_running

__all__ = [
    "BackendSettings",
    "BackendStatus",
    "MonitorOutcome",
    "ensure_running",
    "on_alarm",
    "on_task_stopped",
]
