"""`storyflow local ...`: the local cloud from the command line.

The main CLI mounts this with `app.add_typer(local_app, name="local")`; `python -m storyflow_local.cli up`
works on its own too.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from storyflow_local import dashboard
from storyflow_local.cloud import LocalCloud
from storyflow_local.config import LocalCloudConfig, project_root

local_app = typer.Typer(
    help="Run the stack locally: template.yaml in an embedded AWS, no Docker, no account.",
    no_args_is_help=True,
)

app = local_app  # the name the main CLI looks for


@local_app.callback()
def local() -> None:
    """The local cloud: moto + the template's real handlers, state machines and container commands."""


LOG_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap and close it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool = False) -> None:
    """Local-cloud logs (handlers, containers, adapters) on stderr; moto's own chatter stays quiet."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=LOG_FORMAT,
        datefmt="%H:%M:%S",
        handlers=[_CurrentStderr()],
    )
    logging.getLogger("storyflow_local").setLevel(logging.INFO)
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # moto's ASL parser warns that ToleratedFailurePercentage is ignored; the local cloud applies it.
    logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").setLevel(logging.ERROR)


def parse_parameters(values: list[str]) -> dict[str, str]:
    """`["Key=Value", ...]` → {"Key": "Value"}."""
    parameters = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}")
        parameters[key] = rest
    return parameters


def export_lines(cloud: LocalCloud) -> list[str]:
    """Shell lines that point AWS CLIs/SDKs (and the storyflow CLI) at this local cloud."""
    env = cloud.environment
    keys = [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    lines = [f"export {key}={shlex.quote(env[key])}" for key in keys]
    if cloud.api_url:
        lines.append(f"export STORYFLOW_API_URL={shlex.quote(cloud.api_url)}")
    return lines


@local_app.command()
def up(
    template: Annotated[
        Path | None, typer.Option(help="SAM template (default: the project's template.yaml).")
    ] = None,
    stack_name: Annotated[str, typer.Option(help="CloudFormation stack name.")] = "storyflow-local",
    region: Annotated[str, typer.Option(help="AWS region to emulate.")] = "us-east-1",
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Template parameter KEY=VALUE (repeat).")
    ] = None,
    time_scale: Annotated[
        float,
        typer.Option(help="Local seconds per AWS second (alarm periods, rate() schedules, SQS retries)."),
    ] = 1 / 60,
    quiet: Annotated[bool, typer.Option(help="Only warnings in the log.")] = False,
    state_file: Annotated[
        Path | None, typer.Option(help="Where to write the state JSON (default: .storyflow/local.json).")
    ] = None,
) -> None:
    """Start the local cloud, deploy the template, print how to use it; Ctrl-C or SIGTERM stops everything."""
    configure_logging(verbose=not quiet)
    config = LocalCloudConfig(
        template=(template or project_root() / "template.yaml").resolve(),
        stack_name=stack_name,
        region=region,
        parameters=parse_parameters(parameter or []),
        time_scale=time_scale,
        state_file=state_file,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    cloud = LocalCloud(config)
    try:
        cloud.start()
        typer.echo(f"local cloud ready in {cloud.ready_seconds:.1f}s")
        typer.echo(f"  endpoint: {cloud.endpoint_url}")
        typer.echo(f"  API:      {cloud.api_url or '(no API routes)'}")
        if cloud.api_url:
            typer.echo(f"  dashboard: {dashboard.url(cloud.api_url)}  (no sign-in; build it with `make web`)")
        typer.echo(f"  state:    {config.state_path()}")
        typer.echo("use it from another shell:")
        for line in export_lines(cloud):
            typer.echo(f"  {line}")
        typer.echo("stack outputs:")
        for key, value in sorted(cloud.outputs.items()):
            typer.echo(f"  {key} = {value}")
        typer.echo("Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
        typer.echo("stopping...")
    finally:
        cloud.stop()
        state = config.state_path()
        if state.exists():
            state.unlink()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@local_app.command()
def demo(
    input_file: Annotated[
        Path | None,
        typer.Option("--input", exists=True, dir_okay=False, help="Your own .mp4 for the stereo job."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where outputs, summary.json and the full log go.")] = Path(
        "demo-out"
    ),
    workflow: Annotated[
        list[str] | None,
        typer.Option("--workflow", "-w", help="Only these workflows (repeat); default: all."),
    ] = None,
) -> None:
    """Bring the local cloud up and run every workflow end to end on generated sample media.

    Shows live progress, writes outputs under OUT/ and OUT/summary.json ([{workflow, job_id, status,
    seconds, outputs}]), keeps the full local-cloud log in OUT/local-cloud.log, and exits non-zero if
    any job failed.
    """
    from storyflow_local import demo as runner

    unknown = set(workflow or []) - set(runner.WORKFLOWS)
    if unknown:
        raise typer.BadParameter(
            f"unknown workflow(s) {sorted(unknown)}; choose from {sorted(runner.WORKFLOWS)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    configure_logging(verbose=False)
    log_file = logging.FileHandler(out / "local-cloud.log", mode="w")
    log_file.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger("storyflow_local").addHandler(log_file)
    logging.getLogger(
        "storyflow_local"
    ).propagate = False  # the terminal shows progress; the file has the log
    raise typer.Exit(runner.run(out, input_file, workflow or None))


if __name__ == "__main__":
    local_app()
