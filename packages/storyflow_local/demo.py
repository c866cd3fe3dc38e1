"""`storyflow local demo`: bring up the local cloud and run every workflow end to end on generated media."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from storyflow.models import JobKind
from storyflow_cli.client import ApiClient, Target, follow, save_outputs, upload

console = Console()

# Function logs go to OUT/local-cloud.log (the terminal shows progress); the CPU engines are the local
# cloud's defaults.
DEMO_PARAMETERS = {"MapMaxConcurrency": "4", "StoryClipFrames": "49"}


@dataclass
class DemoResult:
    workflow: str
    job_id: str | None
    status: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def stereo_input(out: Path, source: Path | None) -> tuple[dict[str, Any], Path | None]:
    """A stereo job: the given clip, or a generated 20 s 720p clip with audio."""
    from storyflow_local.samples import make_clip

    if source is None:
        source = out / "stereo" / "source.mp4"
        source.parent.mkdir(parents=True, exist_ok=True)
        console.print("[dim]generating a 20 s 1280x720 sample clip with audio...[/]")
        make_clip(source, seconds=20)
    return {"kind": JobKind.STEREO.value, "layout": "full"}, source


DEMO_NARRATION = (
    "The lighthouse keeper climbed the one hundred and twelve steps at dusk, as he had every evening for "
    "thirty years. He lit the great lamp, and its beam swept across the restless water. Out on the bay, the "
    "small boats turned for home. Nobody thanked him; nobody ever did. But every boat came home."
)


def tts_input(out: Path, source: Path | None) -> tuple[dict[str, Any], Path | None]:
    """A tts job: a short narration (espeak locally: real speech, aligned subtitles and word timings)."""
    return {"kind": JobKind.TTS.value, "text": DEMO_NARRATION, "voice": "bf_emma"}, None


DEMO_VIDEO = {
    "parent_id": "demo",
    "prompt": "A lighthouse at dusk, its beam sweeping over a restless sea",
    "seed": 42,
    "num_frames": 49,
}


def video_input(out: Path, source: Path | None) -> tuple[dict[str, Any], Path | None]:
    """A video job through the API (the preview engine locally: a real title-card clip of the prompt)."""
    return {"kind": JobKind.VIDEO.value, **DEMO_VIDEO, "task_id": f"api-{int(time.time())}"}, None


DEMO_STORY = [
    {
        "text": "At dusk the lighthouse keeper climbs the one hundred and twelve steps.",
        "visual_prompt": "an old stone lighthouse at dusk, warm window light, waves below",
    },
    {
        "text": "He lights the great lamp, and its beam sweeps across the restless water.",
        "visual_prompt": "a lighthouse beam sweeping over a dark stormy sea, long exposure",
    },
    {
        "text": "Out on the bay, the small boats turn for home. Every one of them comes home.",
        "visual_prompt": "small fishing boats sailing into a harbour at night, lanterns glowing",
    },
]


def story_input(out: Path, source: Path | None) -> tuple[dict[str, Any], Path | None]:
    """A 3-scene story: a tts and a video child job per scene, composed with burned-in subtitles."""
    return {"kind": JobKind.STORY.value, "scenes": DEMO_STORY, "voice": "bf_emma", "aspect": "16:9"}, None


# The demo's input per kind: (request body, file to upload when the kind takes one). A kind of the registry
# joins the demo by adding its input here.
DEMO_INPUTS: dict[JobKind, Callable[[Path, Path | None], tuple[dict[str, Any], Path | None]]] = {
    JobKind.STEREO: stereo_input,
    JobKind.TTS: tts_input,
    JobKind.VIDEO: video_input,
    JobKind.STORY: story_input,
}


def run_job(kind: JobKind, api: ApiClient, out: Path, source: Path | None) -> DemoResult:
    """Submit the kind's demo job through the API (uploading its file when the answer has an upload ticket),
    follow it to the end, and download its outputs."""
    began = time.monotonic()
    body, file = DEMO_INPUTS[kind](out, source)
    accepted = api.call("POST", "/jobs", body=body)
    job_id = accepted["job_id"]
    if accepted.get("upload"):
        if file is None:
            raise ValueError(f"the {kind.value} demo needs a file to upload")
        console.print(
            f"{kind.value} job [bold]{job_id}[/]: uploading {file.name} ({file.stat().st_size >> 10} KiB)"
        )
        upload(accepted["upload"], file, console)
    else:
        console.print(f"{kind.value} job [bold]{job_id}[/] submitted")
    job = follow(api, job_id, console, interval=0.5, timeout=900)
    saved = save_outputs(api, job_id, out / kind.value, console) if job["status"] == "completed" else []
    outputs = {path.name: str(path) for path in saved}
    return DemoResult(kind.value, job_id, job["status"], time.monotonic() - began, outputs, job.get("error"))


def _backend_port_taken(port: int) -> str | None:
    """Why the on-demand backend's port cannot be bound here (the local ECS agent runs it on this host)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as error:
            return str(error)
    return None


def _poll(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g}s")
        time.sleep(every)


def run_backend(api: ApiClient, out: Path, source: Path | None) -> DemoResult:
    """The on-demand backend: GET /start, /health/, a row written, a ping, then a stop that saves the DB."""
    from storyflow import aws
    from storyflow.backend.models import BACKEND_PORT

    began = time.monotonic()
    folder = out / "backend"
    folder.mkdir(parents=True, exist_ok=True)
    taken = _backend_port_taken(BACKEND_PORT)
    if taken is not None:
        cause = f"port {BACKEND_PORT} (the backend task's PORT) is in use on this machine: {taken}"
        return DemoResult("backend", None, "failed", 0.0, error={"error": "PortInUse", "cause": cause})
    outputs = api.target.outputs
    ecs, s3, cluster = aws.client("ecs"), aws.client("s3"), outputs["ClusterArn"]
    bucket = outputs["BackendDbBucketName"]
    answers: dict[str, Any] = {}
    task_arn: str | None = None
    try:
        answers["start"] = api.call("GET", "/start")
        task_arn = answers["start"]["task_arn"]
        console.print(f"backend [bold]{answers['start']['status']}[/]: task {task_arn}")

        def address() -> str | None:
            answer = api.call("GET", "/start", params={"action": "ping"})
            return str(answer["public_ip"]) if answer.get("public_ip") else None

        base = f"http://{_poll('a public IP for the task', address, 20)}:{BACKEND_PORT}"

        def health() -> Any:
            try:
                response = requests.get(base + "/health/", timeout=2)
            except requests.ConnectionError:
                return None
            return response.json() if response.status_code == 200 else None

        answers["health"] = _poll(f"{base}/health/", health, 20, every=0.1)
        console.print(f"backend serving at {base}: /health/ → {answers['health']}")
        row = {"name": "demo row", "data": {"written_at": time.time()}}
        created = requests.post(base + "/items/", json=row, timeout=5)
        created.raise_for_status()
        answers["created"] = created.json()
        answers["items"] = requests.get(base + "/items/", timeout=5).json()
        answers["ping"] = api.call("GET", "/start", params={"action": "ping"})
        console.print(f"ping → {answers['ping']['status']}: {answers['ping']['message']}")

        versions_before = len(s3.list_object_versions(Bucket=bucket).get("Versions", []))
        ecs.stop_task(cluster=cluster, task=task_arn, reason="storyflow demo: done")

        def stopped() -> Any:
            tasks = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
            return next((t for t in tasks if t["lastStatus"] == "STOPPED"), None)

        task = _poll("the task to stop (final DB snapshot)", stopped, 40)
        answers["stopped"] = {"lastStatus": task["lastStatus"], "stoppedReason": task.get("stoppedReason")}
        versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
        if len(versions) <= versions_before:
            raise RuntimeError(f"the stopped backend saved no new DB version in s3://{bucket}")
        newest = next(v for v in versions if v["IsLatest"])
        console.print(f"backend stopped; DB saved as version {newest['VersionId']} ({newest['Size']} bytes)")
        (folder / "answers.json").write_text(json.dumps(answers, indent=2, default=str))
        return DemoResult(
            "backend",
            task_arn,
            "completed",
            time.monotonic() - began,
            outputs={
                "db_versions": str(len(versions)),
                "db_snapshot": f"s3://{bucket}/{newest['Key']}?versionId={newest['VersionId']}",
                "answers": str(folder / "answers.json"),
            },
        )
    except Exception as error:
        (folder / "answers.json").write_text(json.dumps(answers, indent=2, default=str))
        return DemoResult(
            "backend",
            task_arn,
            "failed",
            time.monotonic() - began,
            error={"error": type(error).__name__, "cause": str(error)},
        )
    finally:
        if task_arn is not None:  # never leave it running (and holding the port)
            try:
                ecs.stop_task(cluster=cluster, task=task_arn, reason="storyflow demo: cleanup")
            except Exception as error:
                console.print(f"[dim]could not stop {task_arn}: {error}[/]")


def run_video_queue(api: ApiClient, out: Path, source: Path | None) -> DemoResult:
    """The video seed message published to the video topic: it reaches the queue SNS-wrapped, the intake
    derives the job id from parent_id + task_id, and the same workflow renders it."""
    from storyflow import aws, keys

    began = time.monotonic()
    message: dict[str, Any] = {**DEMO_VIDEO, "task_id": f"queue-{int(time.time())}", "num_videos": 2}
    aws.client("sns").publish(TopicArn=api.target.outputs["VideoTopicArn"], Message=json.dumps(message))
    job_id = keys.derived_job_id(JobKind.VIDEO.value, str(message["parent_id"]), str(message["task_id"]))
    console.print(
        f"video seed message published to the topic (SNS-wrapped on the queue): job [bold]{job_id}[/]"
    )
    _poll("the intake to take the message", lambda: _job_exists(api, job_id), 30)
    job = follow(api, job_id, console, interval=0.5, timeout=900)
    folder = out / "video-queue"
    saved = save_outputs(api, job_id, folder, console) if job["status"] == "completed" else []
    outputs = {path.name: str(path) for path in saved}
    return DemoResult(
        "video (queue)", job_id, job["status"], time.monotonic() - began, outputs, job.get("error")
    )


def _job_exists(api: ApiClient, job_id: str) -> bool:
    from storyflow_cli.client import ApiFailure

    try:
        api.call("GET", f"/jobs/{job_id}")
    except ApiFailure:
        return False
    return True


WORKFLOWS: dict[str, Callable[[ApiClient, Path, Path | None], DemoResult]] = {
    **{kind.value: partial(run_job, kind) for kind in DEMO_INPUTS},
    "video-queue": run_video_queue,
    "backend": run_backend,
}


def run(out: Path, source: Path | None = None, workflows: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code (non-zero if any job failed)."""
    from storyflow_local.cloud import LocalCloud
    from storyflow_local.config import LocalCloudConfig
    from storyflow_local.dashboard import url as dashboard_url

    out.mkdir(parents=True, exist_ok=True)
    results: list[DemoResult] = []
    with console.status("starting the local cloud and deploying template.yaml..."):
        cloud = LocalCloud(LocalCloudConfig(parameters=dict(DEMO_PARAMETERS))).start()
    try:
        console.print(f"local cloud ready in {cloud.ready_seconds:.1f}s: API {cloud.api_url}")
        console.print(
            f"dashboard (while the demo runs; `storyflow local up` keeps one): {dashboard_url(cloud.api_url)}"
        )
        api = ApiClient(Target(cloud.api_url, cloud.region, cloud.outputs))
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
