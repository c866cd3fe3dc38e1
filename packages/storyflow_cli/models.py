"""`storyflow models`: check, pack, push and inspect the GPU engines' weights (model artifacts).

No GPU engine downloads weights at run time: they are baked into the image or come as a model artifact
(a ``model.tar.gz`` that SageMaker unpacks into ``/opt/ml/model``, or that the video task unpacks into
``MODEL_DIR``). The layout each engine needs is defined once, in its container package
(``storyflow_<kind>.model_layout``); these commands check exactly that, so they can never disagree.

Adding a kind is one entry in :data:`MODEL_KINDS`.

The SageMaker Python SDK (``sagemaker-core``, the ``models`` extra) does the S3 upload, the endpoint
descriptions and the waits; it is imported inside the commands only, so the rest of the CLI works without it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console
from rich.markup import escape
from storyflow_stereo import model_layout as stereo_layout
from storyflow_tts import model_layout as tts_layout
from storyflow_video import model_layout as video_layout

from storyflow_cli.errors import CliError
from storyflow_cli.target import stack_outputs


@dataclass(frozen=True)
class ModelKind:
    kind: str
    layout: ModuleType  # the engine's own layout module: ENGINE, REQUIRED_FILES, missing_files(root)
    parameter: str  # the template parameter that points the engine at an artifact
    endpoint: str | None = None  # logical id of its SageMaker endpoint (None: an ECS task)
    nested: str | None = None  # a sub-folder the engine also accepts as the root (stereo: weights/)

    @property
    def engine(self) -> str:
        return str(self.layout.ENGINE)

    def missing(self, root: Path) -> list[str]:
        missing: list[str] = self.layout.missing_files(root)
        return missing


MODEL_KINDS: dict[str, ModelKind] = {
    "stereo": ModelKind("stereo", stereo_layout, "StereoModelDataUrl", "StereoEndpoint", nested="weights"),
    "tts": ModelKind("tts", tts_layout, "TtsModelDataUrl", "TtsEndpoint"),
    "video": ModelKind("video", video_layout, "VideoModelUri"),
}
MODEL_PREFIX = "models"  # s3://<OutputBucket>/models/<kind>/<sha256[:16]>/model.tar.gz (never expires)
ARTIFACT = "model.tar.gz"

app = typer.Typer(
    name="models",
    help="Model artifacts for the GPU engines: check a weights folder, pack it as model.tar.gz, push it to a "
    "stack and print the `sam deploy` line that rolls the endpoint or task to it; show what runs.\n\n"
    "Kinds: "
    + "; ".join(f"{k.kind}: {k.engine} (template parameter {k.parameter})" for k in MODEL_KINDS.values())
    + ". Each engine's layout is in containers/<kind>/storyflow_<kind>/model_layout.py.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def model_kind(kind: str) -> ModelKind:
    try:
        return MODEL_KINDS[kind.strip().lower()]
    except KeyError:
        raise CliError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}", code=2) from None


@dataclass(frozen=True)
class Check:
    root: Path  # the folder the engine would load (DIR, or DIR/weights where the engine accepts that)
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing


def check_folder(kind: ModelKind, folder: Path) -> Check:
    """The folder's layout against the engine's: the root to use and what it lacks (relative paths)."""
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder", code=2)
    nested = folder / kind.nested if kind.nested else None
    candidates = [folder] + ([nested] if nested is not None and nested.is_dir() else [])
    results = [Check(c, kind.missing(c)) for c in candidates]
    return next((r for r in results if r.ok), min(results, key=lambda r: len(r.missing)))


def check_archive(kind: ModelKind, archive: Path) -> Check:
    """An artifact's layout: its member names laid out as empty files and checked like a folder."""
    if not archive.is_file():
        raise CliError(f"{archive} does not exist", code=2)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError) as error:
        raise CliError(f"{archive} is not a tar archive: {error}", code=2) from error
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for member in members:
            rel = Path(member.name)
            if rel.is_absolute() or ".." in rel.parts:
                raise CliError(f"{archive} has an unsafe member {member.name!r}", code=2)
            target = root / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
        # SageMaker unpacks the archive itself into /opt/ml/model: the layout must be at its root.
        return Check(Path("."), kind.missing(root))


def pack(kind: ModelKind, folder: Path, output: Path, level: int = 1) -> tuple[Check, int]:
    """Write ``output`` (tar.gz) with the engine's layout at its root; refuses an incomplete folder.

    Symlinks are followed (a Hugging Face cache links to its blobs); gzip level 1 by default, since the
    weights barely compress."""
    check = check_folder(kind, folder)
    if not check.ok:
        raise CliError(_missing_message(kind, check), code=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    out_resolved = output.resolve()
    with tarfile.open(output, "w:gz", compresslevel=level, dereference=True) as tar:
        for path in sorted(check.root.rglob("*")):
            if path.resolve() == out_resolved or not (path.is_file() or path.is_dir()):
                continue
            tar.add(path, arcname=path.relative_to(check.root).as_posix(), recursive=False)
    return check, output.stat().st_size


def _missing_message(kind: ModelKind, check: Check) -> str:
    missing = ", ".join(check.missing)
    return f"{check.root} is not a {kind.engine} model folder ({kind.kind}); missing: {missing}"


def _archive_message(kind: ModelKind, archive: Path, check: Check) -> str:
    return f"{archive} lacks the {kind.engine} layout at its root; missing: {', '.join(check.missing)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _boto_session(region: str | None) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def _sdk_bind(session: boto3.session.Session) -> None:
    """sagemaker-core keeps one process-wide SageMaker client (a singleton made from the first session it
    sees): bind it to this session, so --region (and a test's session) is the one used."""
    from botocore.config import Config
    from sagemaker_core.main.utils import SageMakerClient, SingletonMeta

    SingletonMeta._instances.pop(SageMakerClient, None)
    config = Config(retries={"max_attempts": 10, "mode": "standard"})
    SageMakerClient(session=session, region_name=session.region_name, config=config)


def artifact_uri(bucket: str, kind: ModelKind, digest: str) -> str:
    return f"s3://{bucket}/{MODEL_PREFIX}/{kind.kind}/{digest[:16]}/{ARTIFACT}"


def push(kind: ModelKind, archive: Path, stack: str, region: str | None) -> str:
    """Upload a checked artifact to the stack's model location (content-addressed); its s3:// URI."""
    check = check_archive(kind, archive)
    if not check.ok:
        raise CliError(_archive_message(kind, archive, check))
    outputs = stack_outputs(stack, region)
    bucket = outputs.get("OutputBucketName")
    if not bucket:
        raise CliError(f"stack {stack!r} has no OutputBucketName output", code=2)
    from sagemaker_core.helper.session_helper import Session

    uri = artifact_uri(bucket, kind, _sha256(archive))
    prefix = uri.removeprefix(f"s3://{bucket}/").rsplit("/", 1)[0]
    session = Session(boto_session=_boto_session(region))
    staged = archive
    with tempfile.TemporaryDirectory() as tmp:
        if archive.name != ARTIFACT:  # upload_data keeps the file name: stage it as model.tar.gz
            staged = Path(tmp) / ARTIFACT
            staged.symlink_to(archive.resolve())
        try:
            uploaded = str(session.upload_data(str(staged), bucket=bucket, key_prefix=prefix))
        except Exception as error:  # ClientError, S3UploadFailedError, NoCredentialsError ...
            raise CliError(f"cannot upload {archive} to {uri}: {error}") from error
    return uploaded


def deploy_line(kind: ModelKind, stack: str, uri: str) -> str:
    return f"sam deploy --stack-name {stack} --parameter-overrides {kind.parameter}={uri}"


# --- status -------------------------------------------------------------------------------------------


@dataclass
class EndpointStatus:
    kind: str
    endpoint: str
    status: str = "-"
    instances: str = "-"  # current/desired
    scaling: str = "-"  # min..max
    backlog: str = "-"
    model_data: str = "-"
    image: str = "-"


def _value(value: Any) -> Any:
    """sagemaker-core marks absent fields with an ``Unassigned`` object: None instead."""
    return None if value is None or type(value).__name__ == "Unassigned" else value


def stack_endpoints(stack: str, region: str | None) -> dict[str, str]:
    """{kind: endpoint name} for each model kind's endpoint in the stack."""
    cfn = _boto_session(region).client("cloudformation")
    try:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
        resources = {r["LogicalResourceId"]: r for page in pages for r in page["StackResourceSummaries"]}
    except Exception as error:
        raise CliError(f"cannot read stack {stack!r}: {error}") from error
    found = {}
    for kind in MODEL_KINDS.values():
        resource = resources.get(kind.endpoint or "")
        if resource and resource.get("PhysicalResourceId"):
            # Ref (the physical id) of an AWS::SageMaker::Endpoint is its ARN: the name is the last part.
            found[kind.kind] = str(resource["PhysicalResourceId"]).rsplit("endpoint/", 1)[-1]
    return found


def _backlog(cloudwatch: Any, endpoint: str) -> str:
    now = dt.datetime.now(dt.UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ApproximateBacklogSize",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
        StartTime=now - dt.timedelta(minutes=15),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return f"{points[-1]['Maximum']:g}" if points else "no data"


def endpoint_status(
    kind: str, endpoint: str, session: boto3.session.Session, wait: int | None = None
) -> EndpointStatus:
    from sagemaker_core.resources import Endpoint, EndpointConfig, Model

    region = session.region_name
    row = EndpointStatus(kind, endpoint)
    sm_endpoint = Endpoint.get(endpoint, session=session, region=region)
    if wait is not None and sm_endpoint.endpoint_status in ("Creating", "Updating", "SystemUpdating"):
        sm_endpoint.wait_for_status("InService", poll=15, timeout=wait)
    row.status = str(sm_endpoint.endpoint_status)
    variants = _value(sm_endpoint.production_variants) or []
    if variants:
        current = _value(variants[0].current_instance_count)
        desired = _value(variants[0].desired_instance_count)
        row.instances = f"{current if current is not None else '-'}/{desired if desired is not None else '-'}"
    config = EndpointConfig.get(sm_endpoint.endpoint_config_name, session=session, region=region)
    model = Model.get(config.production_variants[0].model_name, session=session, region=region)
    container = _value(model.primary_container)
    if container is not None:
        row.image = str(_value(container.image) or "-")
        row.model_data = str(_value(container.model_data_url) or "baked into the image")
    autoscaling = session.client("application-autoscaling")
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker",
        ResourceIds=[f"endpoint/{endpoint}/variant/AllTraffic"],
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )["ScalableTargets"]
    if targets:
        row.scaling = f"{targets[0]['MinCapacity']}..{targets[0]['MaxCapacity']}"
    row.backlog = _backlog(session.client("cloudwatch"), endpoint)
    return row


def stack_status(stack: str, region: str | None, wait: int | None = None) -> list[EndpointStatus]:
    endpoints = stack_endpoints(stack, region)
    session = _boto_session(region)
    _sdk_bind(session)
    rows = []
    for kind, endpoint in endpoints.items():
        try:
            rows.append(endpoint_status(kind, endpoint, session, wait))
        except Exception as error:  # one broken endpoint must not hide the others
            rows.append(EndpointStatus(kind, endpoint, status=f"error: {type(error).__name__}: {error}"))
    return rows


# --- commands -----------------------------------------------------------------------------------------

KindArg = Annotated[str, typer.Argument(help="Model kind: " + ", ".join(MODEL_KINDS) + ".")]
StackOpt = Annotated[
    str, typer.Option("--stack", envvar="STORYFLOW_STACK", help="Deployed stack name (CloudFormation).")
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", envvar="STORYFLOW_REGION", help="AWS region of the stack.")
]


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except CliError as error:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(error.message)}")
        raise typer.Exit(error.code) from None


@app.command("check")
def check_command(
    kind: KindArg,
    folder: Annotated[Path, typer.Argument(help="The weights folder (or a model.tar.gz).")],
) -> None:
    """Check a weights folder (or an artifact) against the layout its engine loads; list what is missing.

    Exit 0 when complete, 1 when something is missing, 2 on a usage error."""

    def action() -> None:
        chosen = model_kind(kind)
        result = check_archive(chosen, folder) if folder.is_file() else check_folder(chosen, folder)
        if not result.ok:
            is_dir = folder.is_dir()
            raise CliError(
                _missing_message(chosen, result) if is_dir else _archive_message(chosen, folder, result)
            )
        Console(highlight=False).print(
            f"[green]ok[/] {escape(str(result.root if folder.is_dir() else folder))}: a complete "
            f"{chosen.engine} model ({len(chosen.layout.REQUIRED_FILES)} required files present)"
        )

    _run(action)


@app.command("pack")
def pack_command(
    kind: KindArg,
    folder: Annotated[Path, typer.Argument(help="The weights folder, checked first.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The artifact to write.")] = Path(ARTIFACT),
    level: Annotated[int, typer.Option(min=0, max=9, help="gzip level (weights barely compress).")] = 1,
) -> None:
    """Write a SageMaker model artifact (tar.gz, the engine's layout at its root) from a weights folder."""

    def action() -> None:
        result, size = pack(model_kind(kind), folder, output, level)
        Console(highlight=False).print(
            f"wrote {escape(str(output))} ({size / 1e6:,.1f} MB) from {escape(str(result.root))}"
        )

    _run(action)


@app.command("push")
def push_command(
    kind: KindArg,
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz written by `storyflow models pack`.")],
    stack: StackOpt,
    region: RegionOpt = None,
) -> None:
    """Upload an artifact to the stack's model location (s3://<OutputBucket>/models/<kind>/<sha>/) and print
    the `sam deploy` line that rolls the endpoint (or the video task) to it."""

    def action() -> None:
        chosen = model_kind(kind)
        uri = push(chosen, archive, stack, region)
        console = Console(highlight=False)
        console.print(f"uploaded {escape(str(archive))} to {escape(uri)}")
        console.print("roll the stack to it:")
        print(deploy_line(chosen, stack, uri))

    _run(action)


@app.command("status")
def status_command(
    stack: StackOpt,
    region: RegionOpt = None,
    wait: Annotated[
        int | None,
        typer.Option(help="Wait up to this many seconds for updating endpoints to be InService."),
    ] = None,
) -> None:
    """Each endpoint of the stack: status, instances (current/desired), autoscaling bounds, backlog
    (CloudWatch ApproximateBacklogSize, last 15 min), model data and image."""

    def action() -> None:
        rows = stack_status(stack, region, wait)
        if not rows:
            raise CliError(f"stack {stack!r} has no model endpoints (deployed with ImagesReady=false?)")
        console = Console(highlight=False)
        for row in rows:  # one block per endpoint: URIs and image names stay whole
            console.print(f"[bold]{escape(row.kind)}[/] {escape(row.endpoint)}: {escape(row.status)}")
            console.print(
                f"  instances {escape(row.instances)} (current/desired), autoscaling "
                f"{escape(row.scaling)}, backlog {escape(row.backlog)}"
            )
            console.print(f"  model data {escape(row.model_data)}", soft_wrap=True)
            console.print(f"  image {escape(row.image)}", soft_wrap=True)

    _run(action)
