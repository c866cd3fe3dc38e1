"""How jobs look in a terminal (rich markup): status colours, times, progress, the one-job table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def when(epoch: Any, short: bool = False) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S UTC")


def status_markup(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def progress_text(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    return f"{progress.get('done', 0)}/{progress.get('total', 0)}" if progress.get("total") else "-"


def render_job(job: dict[str, Any], console: Console) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("job", escape(str(job["job_id"])))
    table.add_row("kind", escape(str(job.get("kind", "-"))))
    table.add_row("status", status_markup(str(job.get("status", "?"))))
    table.add_row("stage", escape(str(job.get("stage") or "-")))
    table.add_row("progress", progress_text(job))
    table.add_row("created", when(job.get("created_at")))
    table.add_row("updated", when(job.get("updated_at")))
    if job.get("completed_at"):
        table.add_row("finished", when(job.get("completed_at")))
    for name, uri in sorted((job.get("outputs") or {}).items()):
        table.add_row(escape(f"output {name}"), escape(str(uri)))
    if job.get("parent_id"):
        table.add_row("parent", escape(str(job["parent_id"])))
    if job.get("revision"):
        table.add_row("revision", str(job["revision"]))
    for child in job.get("children") or []:
        where = f"scene {child['scene']} " if child.get("scene") is not None else ""
        table.add_row(escape(f"child {where}{child.get('kind', '?')}"), escape(str(child.get("job_id"))))
    error = job.get("error")
    if error:
        table.add_row("error", f"[red]{escape(str(error.get('error', '')))}[/]")
        if error.get("cause"):
            table.add_row("cause", escape(str(error["cause"])))
    console.print(table)
