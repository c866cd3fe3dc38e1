"""Follow a job: poll it with a live progress bar until it finishes."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from storyflow.models import JobStatus
from storyflow_cli.api_client import ApiClient, job_path
from storyflow_cli.errors import CliError
from storyflow_cli.render import status_markup


def follow(
    client: ApiClient, job_id: str, console: Console, *, interval: float = 2.0, timeout: float = 0
) -> dict[str, Any]:
    """Poll a job with a live progress bar until it finishes; the finished job. Timeout: CliError code 3."""
    path = job_path(job_id)
    deadline = time.monotonic() + timeout if timeout else None
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[job]}[/] {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("watch", total=None, job=job_id, state="")
        while True:
            job: dict[str, Any] = client.call("GET", path)
            done = (job.get("progress") or {}).get("done", 0)
            total = (job.get("progress") or {}).get("total", 0) or None
            stage = job.get("stage")
            state = status_markup(job["status"]) + (f" · {escape(stage)}" if stage else "")
            progress.update(task, completed=done, total=total, state=state)
            if job["status"] in {s.value for s in JobStatus if s.finished}:
                if job["status"] == JobStatus.COMPLETED and total:
                    progress.update(task, completed=total)
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(f"still {job['status']} after {timeout:g} s", code=3)
            time.sleep(interval)
