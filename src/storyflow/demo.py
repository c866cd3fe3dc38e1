"""`storyflow local demo`: bring up the local cloud and run every workflow end to end on generated media."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from storyflow.models import JobStatus

console = Console()

# Quiet function logs (the terminal shows progress); the CPU engines are the local cloud's defaults.
DEMO_PARAMETERS = {"LogLevel": "WARNING", "MapMaxConcurrency": "4"}


@dataclass
class DemoResult:
    workflow: str
    job_id: str | None
    status: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class Api:
    """The jobs API of the local cloud (unsigned: the local HTTP shim does not check IAM)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base + path, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None


def upload(ticket: dict[str, Any], path: Path) -> None:
    with path.open("rb") as handle:
        response = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": (path.name, handle)}, timeout=300
        )
    if response.status_code >= 300:
        raise RuntimeError(f"upload refused ({response.status_code}): {response.text[:300]}")


def watch(api: Api, job_id: str, label: str, timeout: float = 900) -> dict[str, Any]:
    """Poll the job with a live progress bar until it finishes (or the timeout)."""
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn(f"[bold]{label}[/] {{task.description}}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("queued", total=None)
        while True:
            job: dict[str, Any] = api.call("GET", f"/jobs/{job_id}")
            progress = job.get("progress") or {}
            bar.update(
                task,
                description=f"{job['status']} {job.get('stage') or ''}",
                completed=progress.get("done", 0),
                total=progress.get("total") or None,
            )
            if JobStatus(job["status"]).finished or time.monotonic() > deadline:
                return job
            time.sleep(0.5)


def download_outputs(api: Api, job_id: str, directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    urls: dict[str, str] = api.call("GET", f"/jobs/{job_id}/outputs")["outputs"]
    saved = {}
    for name, url in urls.items():
        target = directory / name
        with requests.get(url, timeout=300, stream=True) as response:
            response.raise_for_status()
            with target.open("wb") as handle:
                for chunk in response.iter_content(1 << 20):
                    handle.write(chunk)
        saved[name] = str(target)
    return saved


def run_stereo(api: Api, out: Path, source: Path | None) -> DemoResult:
    from storyflow.samples import make_clip

    began = time.monotonic()
    if source is None:
        source = out / "stereo" / "source.mp4"
        source.parent.mkdir(parents=True, exist_ok=True)
        console.print("[dim]generating a 20 s 1280x720 sample clip with audio...[/]")
        make_clip(source, seconds=20)
    accepted = api.call("POST", "/jobs", json={"kind": "stereo", "layout": "full"})
    job_id = accepted["job_id"]
    console.print(
        f"stereo job [bold]{job_id}[/]: uploading {source.name} ({source.stat().st_size >> 10} KiB)"
    )
    upload(accepted["upload"], source)
    job = watch(api, job_id, "stereo")
    outputs = download_outputs(api, job_id, out / "stereo") if job["status"] == "completed" else {}
    return DemoResult("stereo", job_id, job["status"], time.monotonic() - began, outputs, job.get("error"))


WORKFLOWS: dict[str, Callable[[Api, Path, Path | None], DemoResult]] = {"stereo": run_stereo}


def run(out: Path, source: Path | None = None, workflows: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code (non-zero if any job failed)."""
    from storyflow.local.cloud import LocalCloud
    from storyflow.local.config import LocalCloudConfig

    out.mkdir(parents=True, exist_ok=True)
    results: list[DemoResult] = []
    with console.status("starting the local cloud and deploying template.yaml..."):
        cloud = LocalCloud(LocalCloudConfig(parameters=dict(DEMO_PARAMETERS))).start()
    try:
        console.print(f"local cloud ready in {cloud.ready_seconds:.1f}s: API {cloud.api_url}")
        api = Api(cloud.api_url)
        for name in workflows or list(WORKFLOWS):
            try:
                results.append(WORKFLOWS[name](api, out, source))
            except Exception as error:  # one workflow's crash must not hide the others' results
                console.print_exception()
                results.append(
                    DemoResult(
                        name, None, "error", 0.0, error={"error": type(error).__name__, "cause": str(error)}
                    )
                )
    finally:
        cloud.stop()
    (out / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    table = Table(title="storyflow demo")
    for column in ("workflow", "job", "status", "seconds", "outputs"):
        table.add_column(column)
    for r in results:
        style = "green" if r.status == "completed" else "red"
        table.add_row(
            r.workflow,
            r.job_id or "-",
            f"[{style}]{r.status}[/]",
            f"{r.seconds:.1f}",
            "\n".join(r.outputs.values()) or json.dumps(r.error),
        )
    console.print(table)
    return 0 if results and all(r.status == "completed" for r in results) else 1
