"""`storyflow`: submit jobs, follow them, fetch their outputs (a deployed stack or the local cloud)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import boto3
import requests
import typer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table

from storyflow import __version__
from storyflow.keys import JOB_ID_PATTERN
from storyflow.models import JobKind, JobStatus

LOCAL_STATE = Path(".storyflow") / "local.json"
STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}
CHUNK = 1024 * 1024

app = typer.Typer(
    name="storyflow",
    help="Run storyflow media jobs (stereo 2D->3D, text->video, narration, stories), fetch their outputs.\n\n"
    "The API is found from --api-url, else --stack (CloudFormation outputs, honours AWS_ENDPOINT_URL), "
    "else .storyflow/local.json written by `storyflow local up`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


class CliError(Exception):
    """A failure worth one line to the user (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiFailure(CliError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"API answered {status}{where}: {message}")
        self.status = status
        self.field = field


# ---------------------------------------------------------------- where the API is
@dataclass
class Target:
    api_url: str
    region: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    source: str = ""
    id_token: str | None = None  # Cognito mode: sent as the Authorization header instead of a signature

    @property
    def signed(self) -> bool:
        """A real API Gateway uses IAM auth: requests to it are SigV4-signed. The local shim is not."""
        host = urlsplit(self.api_url).hostname or ""
        return (
            not self.id_token
            and ".execute-api." in host
            and (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
        )

    @property
    def signing_region(self) -> str:
        host = urlsplit(self.api_url).hostname or ""
        match = re.match(r"^[^.]+\.execute-api\.([a-z0-9-]+)\.", host)
        region = (match and match[1]) or self.region or os.environ.get("AWS_REGION")
        return region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def find_local_state(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LOCAL_STATE
        if candidate.is_file():
            return candidate
    return None


def _cloudformation(region: str | None) -> Any:
    return boto3.session.Session(region_name=region).client("cloudformation")


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    """The stack's CloudFormation Outputs (boto3 honours AWS_ENDPOINT_URL, so the local cloud works too)."""
    client = _cloudformation(region)
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError ...
        raise CliError(f"cannot read stack {stack!r}: {error}") from error
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def resolve_target(
    stack: str | None, api_url: str | None, region: str | None, id_token: str | None = None
) -> Target:
    state_file = find_local_state()
    local: dict[str, Any] = json.loads(state_file.read_text()) if state_file else {}
    if stack:
        outputs = stack_outputs(stack, region)
        if id_token and not api_url:
            if not outputs.get("UserApiUrl"):
                raise CliError(
                    f"stack {stack!r} has no Cognito API (UserApiUrl output): deploy it with "
                    "UserPoolArn=<your user pool ARN>, or drop --id-token to use IAM auth",
                    code=2,
                )
            return Target(outputs["UserApiUrl"], region, outputs, f"stack {stack} (Cognito)", id_token)
        url = api_url or outputs.get("ApiUrl", "")
        # A stack in the local cloud reports a fake execute-api URL; its shim's URL is in local.json.
        if not api_url and local and os.environ.get("AWS_ENDPOINT_URL") == local.get("endpoint_url"):
            url = local.get("api_url") or url
        if not url:
            raise CliError(f"stack {stack!r} has no ApiUrl output; pass --api-url", code=2)
        return Target(url, region, outputs, source=f"stack {stack}", id_token=id_token)
    if api_url:
        return Target(api_url, region, {}, source="--api-url", id_token=id_token)
    if local:
        if local.get("endpoint_url"):
            os.environ["AWS_ENDPOINT_URL"] = str(local["endpoint_url"])
        local_region = region or local.get("region")
        if local_region:
            os.environ.setdefault("AWS_DEFAULT_REGION", str(local_region))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")  # the emulator needs some credentials, never real ones
        url = str(local.get("api_url") or "")
        if not url:
            raise CliError(f"{state_file} has no api_url; is the local cloud up?", code=2)
        return Target(url, local_region, dict(local.get("outputs") or {}), source=str(state_file))
    raise CliError(
        "no API to talk to: pass --stack NAME (a deployed stack), --api-url URL, "
        "or start the local cloud (`storyflow local up`).",
        code=2,
    )


# ---------------------------------------------------------------- HTTP
def sign_request(prepared: requests.PreparedRequest, region: str, credentials: Any = None) -> None:
    """SigV4 (service execute-api) over exactly the headers and body that will be sent."""
    creds = credentials or boto3.session.Session().get_credentials()
    if creds is None:
        raise CliError("no AWS credentials found to sign the request (the API uses IAM auth)")
    body = prepared.body or b""
    aws_request = AWSRequest(
        method=prepared.method,
        url=prepared.url,
        data=body.encode() if isinstance(body, str) else body,
        headers=dict(prepared.headers),
    )
    SigV4Auth(creds.get_frozen_credentials(), "execute-api", region).add_auth(aws_request)
    prepared.headers.update(dict(aws_request.headers.items()))


class ApiClient:
    """The jobs API over HTTP. A request that is safe to repeat (a GET, or one carrying an Idempotency-Key)
    is retried with backoff when the API cannot be reached or answers 429/502/503/504."""

    RETRY_STATUSES = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        target: Target,
        session: requests.Session | None = None,
        timeout: float = 30,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
    ) -> None:
        self.target = target
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry_delays = retry_delays

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.target.api_url.rstrip("/") + path
        request = requests.Request(
            method,
            url,
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers={
                "Accept": "application/json",
                "User-Agent": f"storyflow-cli/{__version__}",
                **(headers or {}),
            },
        )
        if self.target.id_token:
            request.headers["Authorization"] = self.target.id_token
        repeatable = method == "GET" or "Idempotency-Key" in request.headers
        delays = list(self.retry_delays) if repeatable else []
        while True:
            prepared = self.session.prepare_request(request)
            if self.target.signed:
                sign_request(prepared, self.target.signing_region)  # a fresh signature (and date) per try
            try:
                response = self.session.send(prepared, timeout=self.timeout)
            except requests.RequestException as error:
                if delays:
                    time.sleep(delays.pop(0))
                    continue
                raise CliError(f"cannot reach {url}: {error}") from error
            if response.status_code in self.RETRY_STATUSES and delays:
                time.sleep(min(float(response.headers.get("Retry-After") or delays[0]), 10.0))
                delays.pop(0)
                continue
            break
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = {"message": response.text[:500]}
        if response.status_code >= 400:
            data = data if isinstance(data, dict) else {}
            message = data.get("message") or data.get("Message") or response.reason or "request failed"
            raise ApiFailure(response.status_code, str(message), data.get("field"))
        return data


# ---------------------------------------------------------------- uploads and downloads
class MultipartStream:
    """multipart/form-data for an S3 presigned POST, streamed: the fields, then the file (S3 wants it last).

    It has a length, so requests sends Content-Length (S3 refuses chunked POSTs) and reads it in blocks.
    """

    def __init__(self, fields: dict[str, str], path: Path, content_type: str, on_read: Any = None) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._parts: list[bytes | Path] = [head, path, f"\r\n--{self.boundary}--\r\n".encode()]
        self._length = len(head) + path.stat().st_size + len(self._parts[2])  # type: ignore[arg-type]
        self._on_read = on_read
        self._iter = self._blocks()
        self._buffer = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def _blocks(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            with part.open("rb") as handle:
                while block := handle.read(CHUNK):
                    if self._on_read:
                        self._on_read(len(block))
                    yield block

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            block = next(self._iter, None)
            if block is None:
                break
            self._buffer += block
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(CHUNK):
            yield block


def upload(ticket: dict[str, Any], path: Path, console: Console) -> None:
    size = path.stat().st_size
    if size == 0:
        raise CliError(f"{path} is empty")
    if size > int(ticket["max_bytes"]):
        raise CliError(f"{path} is {size} bytes; this job accepts at most {ticket['max_bytes']}")
    content_type = ticket["fields"].get("Content-Type", "video/mp4")
    with _transfer_progress(console) as progress:
        task = progress.add_task(escape(f"upload {path.name}"), total=size)
        stream = MultipartStream(ticket["fields"], path, content_type, lambda n: progress.advance(task, n))
        try:
            response = requests.post(
                ticket["url"], data=stream, headers={"Content-Type": stream.content_type}, timeout=600
            )
        except requests.RequestException as error:
            raise CliError(f"upload failed: {error}") from error
    if response.status_code >= 300:
        reason = re.search(r"<Message>(.*?)</Message>", response.text)
        raise CliError(
            f"upload refused ({response.status_code}): {reason[1] if reason else response.text[:300]}"
        )


def output_filename(name: str, url: str) -> str:
    """A safe local file name for an output: its name, with the object's extension when it has none."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "output"
    if not Path(safe).suffix:
        suffix = Path(unquote(urlsplit(url).path)).suffix
        if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix):
            safe += suffix
    return safe


def download(url: str, destination: Path, progress: Progress) -> int:
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            if response.status_code >= 300:
                raise CliError(f"download of {destination.name} failed ({response.status_code})")
            total = int(response.headers.get("Content-Length") or 0) or None
            task = progress.add_task(escape(f"get {destination.name}"), total=total)
            partial = destination.with_name(destination.name + ".part")
            written = 0
            with partial.open("wb") as handle:
                for block in response.iter_content(CHUNK):
                    handle.write(block)
                    written += len(block)
                    progress.advance(task, len(block))
            partial.replace(destination)
            return written
    except requests.RequestException as error:
        raise CliError(f"download of {destination.name} failed: {error}") from error


def _transfer_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


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
            state = _status(job["status"]) + (f" · {escape(stage)}" if stage else "")
            progress.update(task, completed=done, total=total, state=state)
            if job["status"] in {s.value for s in JobStatus if s.finished}:
                if job["status"] == JobStatus.COMPLETED and total:
                    progress.update(task, completed=total)
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(f"still {job['status']} after {timeout:g} s", code=3)
            time.sleep(interval)


def save_outputs(client: ApiClient, job_id: str, directory: Path, console: Console) -> list[Path]:
    """Download every output of a completed job into `directory`."""
    outputs = client.call("GET", job_path(job_id, "/outputs"))
    if not outputs["outputs"]:
        raise CliError(f"job {job_id} has no downloadable outputs")
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    with _transfer_progress(console) as progress:
        for name, url in sorted(outputs["outputs"].items()):
            destination = directory / output_filename(name, url)
            download(url, destination, progress)
            saved.append(destination)
    return saved


# ---------------------------------------------------------------- rendering
def _when(epoch: Any, short: bool = False) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S UTC")


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def _progress_text(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    return f"{progress.get('done', 0)}/{progress.get('total', 0)}" if progress.get("total") else "-"


def render_job(job: dict[str, Any], console: Console) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("job", escape(str(job["job_id"])))
    table.add_row("kind", escape(str(job.get("kind", "-"))))
    table.add_row("status", _status(str(job.get("status", "?"))))
    table.add_row("stage", escape(str(job.get("stage") or "-")))
    table.add_row("progress", _progress_text(job))
    table.add_row("created", _when(job.get("created_at")))
    table.add_row("updated", _when(job.get("updated_at")))
    if job.get("completed_at"):
        table.add_row("finished", _when(job.get("completed_at")))
    for name, uri in sorted((job.get("outputs") or {}).items()):
        table.add_row(escape(f"output {name}"), escape(str(uri)))
    error = job.get("error")
    if error:
        table.add_row("error", f"[red]{escape(str(error.get('error', '')))}[/]")
        if error.get("cause"):
            table.add_row("cause", escape(str(error["cause"])))
    console.print(table)


# ---------------------------------------------------------------- commands
def job_path(job_id: str, suffix: str = "") -> str:
    """`/jobs/{job_id}{suffix}`, refusing ids that are not storyflow ids before anything is sent."""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise CliError(
            f"{job_id!r} is not a storyflow job id (expected e.g. stereo-20261123-0123456789ab)", 2
        )
    return f"/jobs/{job_id}{suffix}"


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


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def build_request(
    kind: JobKind, json_file: Path | None, settings: list[str], prompt: str | None, text: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if json_file is not None:
        try:
            loaded = json.loads(json_file.read_text())
        except (OSError, ValueError) as error:
            raise CliError(f"cannot read {json_file}: {error}", code=2) from error
        if not isinstance(loaded, dict):
            raise CliError(f"{json_file} must hold a JSON object", code=2)
        body.update(loaded)
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set wants KEY=VALUE, got {item!r}", code=2)
        body[key.strip()] = _parse_value(value)
    if prompt is not None:
        body["prompt"] = prompt
    if text is not None:
        body["text"] = text
    if body.get("kind", kind.value) != kind.value:
        raise CliError(f"the request says kind {body['kind']!r} but the command says {kind.value!r}", code=2)
    body["kind"] = kind.value
    return body


@app.command()
def submit(
    ctx: typer.Context,
    kind: Annotated[JobKind, typer.Argument(help="stereo, video, tts or story.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="A JSON file with the request's parameters.", exists=True)
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A parameter KEY=VALUE (VALUE parsed as JSON when it can be)."),
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt (video, story).")] = None,
    text: Annotated[str | None, typer.Option(help="The text to narrate (tts).")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="stereo: the .mp4 to upload (the upload starts the job).", exists=True
        ),
    ] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Then follow the job until it finishes.")] = False,
) -> None:
    """Submit a job; with --file, upload a stereo job's .mp4 (the upload starts it).

    Examples:

    storyflow submit stereo --file clip.mp4 --set layout=half --watch

    storyflow submit video --prompt "a lighthouse at dusk" -s parent_id=p1 -s task_id=t1 -s num_videos=2

    storyflow submit tts --text "Once upon a time." --set voice=af_heart
    """
    console = _console()
    try:
        if file is not None and kind is not JobKind.STEREO:
            raise CliError("--file is for stereo jobs (other kinds take no upload)", code=2)
        body = build_request(kind, json_file, settings or [], prompt, text)
        if file is not None and "max_upload_bytes" not in body:
            body["max_upload_bytes"] = max(1, file.stat().st_size)
        # One key per submission: the client's retries (timeouts, 503s) can never make a second job.
        key = {"Idempotency-Key": f"cli-{uuid.uuid4().hex}"}
        accepted = _ctx(ctx).client.call("POST", "/jobs", body=body, headers=key)
        job_id = accepted["job_id"]
        console.print(f"submitted [bold]{escape(job_id)}[/] ({kind.value}, {_status(accepted['status'])})")
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
                    _status(job["status"]),
                    escape(job.get("stage") or "-"),
                    _progress_text(job),
                    _when(job.get("created_at"), short=True),
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
    _console().print(f"{escape(job['job_id'])} {_status(job['status'])}")


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


def _mount_local() -> None:
    """`storyflow local ...` comes from the local-cloud extra; without it the CLI still works."""
    try:
        from storyflow.local import cli as local_cli  # type: ignore[attr-defined, unused-ignore]
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
