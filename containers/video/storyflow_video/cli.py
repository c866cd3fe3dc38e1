"""`storyflow-video`: the video container's command (the ECS GPU task of the video workflow).

    storyflow-video generate --job-id J --jobs-table T --output-bucket B --output-prefix videos/P/T/
                             [--image-uri s3://...] [--engine wan|tiny|preview]
    storyflow-video render --request request.json --out DIR [--engine ...]     (local files, no AWS)

`generate` reads the job's request from its Jobs item, renders `num_videos` clips with the engine ($ENGINE,
default preview), uploads `{output-prefix}{n}.mp4` (H.264 yuv420p, faststart), and keeps the item's
`progress` {done, total} (steps x videos) and `stage` current; it stops if the job stops running.

Result protocol: with RESULT_BUCKET set (the task definition sets it), success leaves
`s3://$RESULT_BUCKET/jobs/J/steps/generate/result.json` (outputs, real size, seeds) and failure
`.../error.json` `{"error": <Class>, "message", "job_id", "step", "exit_code"}`, SIGTERM included
(`Terminated`): on AWS a stopped task tells Step Functions only its exit code.
Exit codes: 0 ok (one JSON line on stdout), 1 failure, 2 bad request or image, 128+N on signal N.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from storyflow_video import __version__, keys, s3io
from storyflow_video.encode import write_mp4
from storyflow_video.engines import ENGINES, Engine, load
from storyflow_video.errors import (
    InjectedFault,
    InvalidImage,
    InvalidRequest,
    JobNotRunning,
    Terminated,
    VideoError,
)
from storyflow_video.request import VideoJob, parse

log = logging.getLogger("storyflow_video")

STEP = "generate"
RESULT_BUCKET_ENV = "RESULT_BUCKET"
FAULT_ENV = "VIDEO_FAIL_PROMPT_SUBSTRING"
TERMINATE_GRACE_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 0.5
MAX_IMAGE_BYTES = 50 * 1024 * 1024
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"RIFF", "webp"))

#: (videos done, steps done in the current video, stage) -> False to stop
Progress = Callable[[int, int, str], bool]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storyflow-video", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    g = sub.add_parser("generate", help="render a job's clips and upload them (the ECS task)")
    g.add_argument("--job-id", required=True, type=keys.job_id)
    g.add_argument("--jobs-table", required=True, help="the Jobs table (request in, progress out)")
    g.add_argument("--output-bucket", required=True)
    g.add_argument("--output-prefix", required=True, help="videos/{parent_id}/{task_id}/ (from the workflow)")
    g.add_argument("--image-uri", default="", help="s3:// image for image-to-video (empty: text only)")
    g.add_argument("--engine", choices=ENGINES, help="default $ENGINE, else preview")
    r = sub.add_parser("render", help="render a request JSON to local files (no AWS)")
    r.add_argument("--request", required=True, type=Path, help="a JSON file with the request's fields")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--image", type=Path, help="a local image for image-to-video")
    r.add_argument("--engine", choices=ENGINES)
    return parser


def open_image(data: bytes, where: str) -> Any:
    """A PIL image from PNG/JPEG/WebP bytes; InvalidImage otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidImage(f"{where} is empty (0 bytes)")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidImage(f"{where} is {len(data)} bytes; at most {MAX_IMAGE_BYTES} are accepted")
    if not any(
        data.startswith(sig) and (kind != "webp" or data[8:12] == b"WEBP") for sig, kind in IMAGE_SIGNATURES
    ):
        raise InvalidImage(f"{where} is not a PNG, JPEG or WebP image (first bytes {data[:12]!r})")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidImage(f"{where} cannot be decoded: {error}") from error
    return image


def render(
    job: VideoJob,
    engine: Engine,
    image: Any,
    out: Path,
    progress: Progress,
    on_video: Callable[[int, Path], None] = lambda index, path: None,
) -> dict[str, Any]:
    """Render every video of the job into `out/{n}.mp4`; returns the result (without outputs)."""
    width, height = engine.size(job)
    fault = os.environ.get(FAULT_ENV, "")
    videos: list[dict[str, Any]] = []
    began = time.monotonic()
    for index, seed in enumerate(job.seeds()):
        started = time.monotonic()

        def on_step(done: int, total: int, index: int = index) -> None:
            if fault and fault in job.prompt:
                raise InjectedFault(f"prompt contains {FAULT_ENV}={fault!r} (video {index}, step {done})")
            if not progress(index, done, "generating"):
                raise JobNotRunning("the job is no longer running (cancelled?); stopped")

        path = out / f"{index}.mp4"
        frames = write_mp4(
            engine.frames(job, seed, image, on_step), path, job.fps, preset=engine.encode_preset
        )
        if not progress(index + 1, 0, "uploading"):
            raise JobNotRunning("the job is no longer running (cancelled?); stopped")
        on_video(index, path)
        videos.append(
            {
                "index": index,
                "seed": seed,
                "frames": frames,
                "bytes": path.stat().st_size,
                "render_seconds": round(time.monotonic() - started, 3),
            }
        )
    return {
        "engine": engine.name,
        "width": width,
        "height": height,
        "requested_width": job.width,
        "requested_height": job.height,
        "num_frames": job.num_frames,
        "fps": job.fps,
        "duration_seconds": round(job.num_frames / job.fps, 3),
        "image": job.image_uri is not None,
        "videos": videos,
        "seconds": round(time.monotonic() - began, 3),
    }


def run_generate(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    record = s3io.JobRecord(args.jobs_table, args.job_id)
    request = record.request()
    if not request:
        raise InvalidRequest(f"job {args.job_id} has no request in {args.jobs_table}")
    if args.image_uri:
        request = {**request, "image_uri": args.image_uri}
    job = parse(request)
    image = None
    s3 = s3io.s3_client()
    if job.image_uri:
        try:
            bucket, key = s3io.split_uri(job.image_uri)
            data = s3io.read(s3, bucket, key)
        except ClientError as error:
            if s3io.is_missing(error):
                raise InvalidImage(f"{job.image_uri} does not exist") from error
            raise
        image = open_image(data, job.image_uri)
    engine = load(args.engine)
    steps = engine.steps(job)
    total = steps * job.num_videos
    last = [0.0]

    def progress(videos_done: int, step: int, stage: str) -> bool:
        done = videos_done * steps + step
        now = time.monotonic()
        if stage == "generating" and 0 < step < steps and now - last[0] < PROGRESS_EVERY_SECONDS:
            return True
        last[0] = now
        return record.update(done=done, total=total, stage=stage)

    if not record.update(done=0, total=total, stage="generating"):
        raise JobNotRunning(f"job {args.job_id} is not running; nothing rendered")
    outputs: dict[str, str] = {}

    def put(index: int, path: Path) -> None:
        key = keys.video_key(args.output_prefix, index)
        s3io.upload(s3, path, args.output_bucket, key)
        outputs[f"{index}.mp4"] = s3io.uri(args.output_bucket, key)

    result = render(job, engine, image, work, progress, put)
    for video in result["videos"]:
        video["uri"] = outputs[f"{video['index']}.mp4"]
    return {"job_id": args.job_id, "step": STEP, "outputs": outputs, **result}


def run_render(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    try:
        request = json.loads(args.request.read_text())
    except (OSError, ValueError) as error:
        raise InvalidRequest(f"cannot read {args.request}: {error}") from error
    job = parse(request)
    image = open_image(args.image.read_bytes(), str(args.image)) if args.image else None
    args.out.mkdir(parents=True, exist_ok=True)
    result = render(job, load(args.engine), image, args.out, lambda videos, step, stage: True)
    return {
        "outputs": {f"{v['index']}.mp4": str(args.out / f"{v['index']}.mp4") for v in result["videos"]},
        **result,
    }


COMMANDS = {"generate": run_generate, "render": run_render}


class StepReport:
    """result.json / error.json under s3://$RESULT_BUCKET/jobs/J/steps/generate/ (nothing without the env)."""

    def __init__(self, bucket: str | None, job: str | None) -> None:
        self.bucket = (bucket or None) if job else None
        self.job = job or ""

    def success(self, result: dict[str, Any]) -> None:
        if self.bucket is not None:
            key = keys.step_result_key(self.job, STEP)
            s3io.put_json(s3io.s3_client(), self.bucket, key, result, intermediate=True)

    def failure(self, error: str, message: str, exit_code: int, quick: bool = False) -> None:
        """Never raises: the original error is always the one reported."""
        if self.bucket is None:
            return
        key = keys.step_error_key(self.job, STEP)
        document = {
            "error": error,
            "message": message,
            "job_id": self.job,
            "step": STEP,
            "exit_code": exit_code,
        }
        try:
            client = s3io.quick_s3_client() if quick else s3io.s3_client()
            s3io.put_json(client, self.bucket, key, document, intermediate=True)
        except Exception as exc:
            print(
                f"warning: could not write {s3io.uri(self.bucket, key)}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


class _Signals:
    """SIGTERM/SIGINT unwind the command (Terminated); a watchdog hard-exits if unwinding stalls (a GPU
    kernel does not return to Python promptly)."""

    HANDLED = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, report: StepReport) -> None:
        self.report = report
        self.received: Terminated | None = None
        self._exiting = threading.Lock()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.HANDLED}
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = Terminated(signum, signal.Signals(signum).name)
        watchdog = threading.Timer(TERMINATE_GRACE_SECONDS, self.exit)
        watchdog.daemon = True
        watchdog.start()
        raise self.received

    def exit(self) -> NoReturn:
        with self._exiting:
            assert self.received is not None
            print(f"error: Terminated: {self.received}", file=sys.stderr, flush=True)
            self.report.failure("Terminated", str(self.received), self.received.exit_code, quick=True)
            sys.stdout.flush()
            os._exit(self.received.exit_code)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or repr(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    report = StepReport(os.environ.get(RESULT_BUCKET_ENV), getattr(args, "job_id", None))
    signals = _Signals(report)
    try:
        with signals, tempfile.TemporaryDirectory(prefix="storyflow-video-") as tmp:
            result = COMMANDS[args.command](args, Path(tmp))
            report.success(result)
    except Terminated:
        signals.exit()
    except VideoError as exc:
        return _fail(report, exc, exc.exit_code)
    except Exception as exc:
        log.info("failed", exc_info=True)
        return _fail(report, exc, 1)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


def _fail(report: StepReport, exc: BaseException, exit_code: int) -> int:
    name, message = type(exc).__name__, _one_line(exc)
    print(f"error: {name}: {message}", file=sys.stderr, flush=True)
    report.failure(name, message, exit_code)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
