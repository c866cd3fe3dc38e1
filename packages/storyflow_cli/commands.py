"""`storyflow`: submit jobs, follow them, fetch their outputs (a deployed stack or the local cloud).

The typer commands; everything they send and receive goes through `storyflow_cli.client`.
"""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from storyflow import registry
from storyflow.models import JobKind, JobStatus
from storyflow_cli.client import ApiClient, CliError, follow, job_path, resolve_target, save_outputs, upload
from storyflow_cli.job_request import build_request
from storyflow_cli.models import app as models_app
from storyflow_cli.render import progress_text, render_job, status_markup, when
from storyflow_cli.sam_env import sam_env_command

KINDS_HELP = "The kind of job: " + "; ".join(f"{w.kind.value}: {w.summary}" for w in registry.WORKFLOWS) + "."

app = typer.Typer(
    name="storyflow",
    help="Run storyflow media jobs (stereo 2D->3D, text->video, narration, stories), fetch their outputs.\n\n"
    "The API is found from --api-url, else --stack (CloudFormation outputs, honours AWS_ENDPOINT_URL), "
    "else .storyflow/local.json written by `storyflow local up`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@dataclass
class Context:
    stack: str | None
    api_url: str | None
    region: str | None
    id_token: str | None = None
    _client: ApiClient | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(resolve_target(self.stack, self.api_url, self.region, self.id_token))
        return self._client


def _ctx(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def _console() -> Console:
    return Console(highlight=False)


def _fail(error: CliError) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(error.message)}")
    return typer.Exit(error.code)


@app.callback()
def _global_options(
    ctx: typer.Context,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", envvar="STORYFLOW_STACK", help="Deployed stack name: its Outputs give the API."
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", envvar="STORYFLOW_API_URL", help="API base URL (overrides the stack's)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", envvar="AWS_REGION", help="AWS region of the stack.")
    ] = None,
    id_token: Annotated[
        str | None,
        typer.Option(
            "--id-token",
            envvar="STORYFLOW_ID_TOKEN",
            help="Cognito ID token: call the stack's Cognito API (UserApiUrl) with it instead of "
            "SigV4-signing the IAM API with your AWS credentials.",
        ),
    ] = None,
) -> None:
    """Global options; the API is looked up only when a command needs it."""
    ctx.obj = Context(stack, api_url, region, id_token)


@app.command()
def submit(
    ctx: typer.Context,
    kind: Annotated[JobKind, typer.Argument(help=KINDS_HELP)],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="A JSON file with the request's parameters.", exists=True)
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A parameter KEY=VALUE (VALUE parsed as JSON when it can be)."),
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt (video, story).")] = None,
    text: Annotated[str | None, typer.Option(help="The text to narrate (tts).")] = None,
    scenes: Annotated[
        Path | None,
        typer.Option(
            "--scenes",
            help="A story's scenes: a JSON file with an array of {text, visual_prompt?, image_uri?}.",
            exists=True,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="The file to upload for kinds that take one (stereo: the .mp4); the upload starts the job.",
            exists=True,
        ),
    ] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Then follow the job until it finishes.")] = False,
) -> None:
    """Submit a job; with --file, upload a stereo job's .mp4 (the upload starts it).

    Examples:

    storyflow submit stereo --file clip.mp4 --set layout=half --watch

    storyflow submit video --prompt "a lighthouse at dusk" -s parent_id=p1 -s task_id=t1 -s num_videos=2

    storyflow submit tts --text "Once upon a time." --set voice=af_heart

    storyflow submit story --scenes scenes.json --set aspect=9:16 --watch
    """
    console = _console()
    try:
        workflow = registry.get(kind)
        if file is not None and workflow.upload is None:
            uploads = ", ".join(w.kind.value for w in registry.WORKFLOWS if w.upload)
            raise CliError(
                f"--file is for kinds that take an upload ({uploads}); {kind.value} takes none", code=2
            )
        if file is not None and file.stat().st_size == 0:
            raise CliError(f"{file} is empty (0 bytes); nothing was submitted", code=2)
        body = build_request(kind, json_file, settings or [], prompt, text, scenes)
        if (
            file is not None
            and "max_upload_bytes" not in body
            and "max_upload_bytes" in workflow.request.model_fields
        ):
            body["max_upload_bytes"] = max(1, file.stat().st_size)
        # One key per submission: the client's retries (timeouts, 503s) can never make a second job.
        key = {"Idempotency-Key": f"cli-{uuid.uuid4().hex}"}
        accepted = _ctx(ctx).client.call("POST", "/jobs", body=body, headers=key)
        job_id = accepted["job_id"]
        console.print(
            f"submitted [bold]{escape(job_id)}[/] ({kind.value}, {status_markup(accepted['status'])})"
        )
        ticket = accepted.get("upload")
        if ticket:
            if file is None:
                console.print("upload the .mp4 with this presigned POST (multipart form, fields then file):")
                console.print_json(json.dumps(ticket))
            else:
                upload(ticket, file, console)
                console.print(escape(f"uploaded {file.name} -> {ticket['key']}"))
    except CliError as error:
        raise _fail(error) from None
    if watch_it:
        watch(ctx, job_id)


@app.command()
def regenerate(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The story's job id.")],
    scene: Annotated[int, typer.Argument(help="The scene to make again, from 0.", min=0)],
    text: Annotated[str | None, typer.Option(help="The scene's new narration.")] = None,
    visual_prompt: Annotated[str | None, typer.Option(help="What the scene's new clip shows.")] = None,
    watch_it: Annotated[
        bool, typer.Option("--watch", help="Then follow the story until it finishes.")
    ] = False,
) -> None:
    """Make one scene of a completed or failed story again and compose the story anew; the other scenes
    keep their narration and clip.

    Example: storyflow regenerate story-20261202-0a1b2c3d4e5f 2 --text "The fox lands softly." --watch
    """
    edit = {k: v for k, v in (("text", text), ("visual_prompt", visual_prompt)) if v is not None}
    try:
        accepted = _ctx(ctx).client.call("POST", job_path(job_id, f"/scenes/{scene}/regenerate"), body=edit)
    except CliError as error:
        raise _fail(error) from None
    _console().print(
        f"regenerating scene {scene} of [bold]{escape(job_id)}[/] ({status_markup(accepted['status'])})"
    )
    if watch_it:
        watch(ctx, job_id)


@app.command()
def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the job as JSON.")] = False,
) -> None:
    """Show one job: status, stage, progress, times, error and outputs."""
    try:
        job = _ctx(ctx).client.call("GET", job_path(job_id))
    except CliError as error:
        raise _fail(error) from None
    if raw:
        typer.echo(json.dumps(job, indent=2))
    else:
        render_job(job, _console())


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[JobStatus, typer.Option("--status", help="Which status to list.")] = JobStatus.RUNNING,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="Jobs per page.")] = 20,
    next_token: Annotated[
        str | None, typer.Option("--next", help="Token printed under a previous page.")
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
) -> None:
    """List jobs of one status, newest first."""
    console = _console()
    table = Table(
        Column("job", no_wrap=True),  # ids are never cut (and start with the kind)
        Column("status", no_wrap=True),
        Column("stage", overflow="fold"),
        "progress",
        Column("created (UTC)", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    count = 0
    try:
        while True:
            page = _ctx(ctx).client.call(
                "GET", "/jobs", params={"status": status.value, "limit": limit, "next": next_token}
            )
            for job in page["items"]:
                count += 1
                table.add_row(
                    escape(job["job_id"]),
                    status_markup(job["status"]),
                    escape(job.get("stage") or "-"),
                    progress_text(job),
                    when(job.get("created_at"), short=True),
                )
            next_token = page.get("next")
            if not (all_pages and next_token):
                break
    except CliError as error:
        raise _fail(error) from None
    if count:
        console.print(table)
    else:
        console.print(f"no {status.value} jobs")
    if next_token:
        console.print(escape(f"more: storyflow list --status {status.value} --next {next_token}"))


@app.command()
def watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.", min=0)] = 2.0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (0: never).", min=0)] = 0,
) -> None:
    """Follow a job with a live progress bar until it finishes.

    Exit code: 0 completed, 1 failed or cancelled (the error and its cause are printed), 3 timed out.
    """
    console = _console()
    try:
        job = follow(_ctx(ctx).client, job_id, console, interval=interval, timeout=timeout)
    except CliError as error:
        raise _fail(error) from None
    render_job(job, console)
    if job["status"] != JobStatus.COMPLETED:
        raise typer.Exit(1)


@app.command()
def get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (completed).")],
    directory: Annotated[
        Path | None, typer.Option("--dir", "-d", help="Where to save (default: ./<job id>).")
    ] = None,
) -> None:
    """Download a completed job's outputs."""
    console = _console()
    try:
        saved = save_outputs(_ctx(ctx).client, job_id, directory or Path(job_id), console)
    except CliError as error:
        raise _fail(error) from None
    for path in saved:
        console.print(escape(f"saved {path} ({path.stat().st_size} bytes)"))


@app.command()
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="The job id.")]) -> None:
    """Cancel a queued or running job (stops its execution). A finished job cannot be cancelled."""
    try:
        job = _ctx(ctx).client.call("POST", job_path(job_id, "/cancel"))
    except CliError as error:
        raise _fail(error) from None
    _console().print(f"{escape(job['job_id'])} {status_markup(job['status'])}")


def _backend(ctx: typer.Context, params: dict[str, str] | None) -> None:
    try:
        answer = _ctx(ctx).client.call("GET", "/start", params=params)
    except CliError as error:
        raise _fail(error) from None
    console = _console()
    console.print(f"[bold]{escape(str(answer.get('status')))}[/] {escape(str(answer.get('message') or ''))}")
    for key in ("task_arn", "public_ip", "expires_at"):
        console.print(f"  {key}: {escape(str(answer.get(key)))}")


@app.command()
def start(ctx: typer.Context) -> None:
    """Wake the on-demand backend (starts its Fargate task if none runs; extends its life otherwise)."""
    _backend(ctx, None)


@app.command()
def ping(ctx: typer.Context) -> None:
    """Keep the on-demand backend alive: without pings, its idle alarm stops it after its lifetime."""
    _backend(ctx, {"action": "ping"})


app.add_typer(models_app, name="models")
app.command("sam-env")(sam_env_command)


def _mount_local() -> None:
    """`storyflow local ...` comes from the storyflow_local package (the local-cloud extra); without it the
    CLI still works. Imported here, at run time, so no module of this package ever imports it."""
    try:
        local_cli = importlib.import_module("storyflow_local.cli")
    except ImportError:
        return
    local_app = getattr(local_cli, "app", None)
    already = any(group.name == "local" for group in app.registered_groups)
    if isinstance(local_app, typer.Typer) and not already:
        app.add_typer(
            local_app, name="local", help="Run the whole stack on this machine (no Docker, no AWS)."
        )


def main() -> None:
    _mount_local()
    app()


if __name__ == "__main__":
    main()
