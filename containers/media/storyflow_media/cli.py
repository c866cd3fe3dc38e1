"""`storyflow-media`: the media container's command (ECS task of the stereo workflow).

Exit codes: 0 done (one JSON line on stdout), 1 failure, 2 not a video / bad arguments,
128+N on signal N (143 for SIGTERM). Every failure prints one line `error: <Class>: <reason>` on
stderr; with -v, progress is logged to stderr as well.

Result protocol: with `RESULT_BUCKET` set (the task definition sets it to the stack's output bucket),
the command also leaves `s3://$RESULT_BUCKET/jobs/<job>/steps/<command>/result.json` (the JSON line)
on success, or `.../error.json` `{"error": <Class>, "message": <reason>, ...}` on failure, SIGTERM
included. On AWS a stopped task tells Step Functions only its exit code, so error.json is how the
job's error reaches the user; stderr is for the logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from storyflow_media import __version__, keys, s3io
from storyflow_media.errors import MediaError, Terminated
from storyflow_media.steps import COMMANDS, s3_location, scene_list

log = logging.getLogger("storyflow_media")

#: After SIGTERM, how long unwinding (temp files, transfer threads) may take before a hard exit.
TERMINATE_GRACE_SECONDS = 1.0
#: The bucket of the step result documents (result.json / error.json); unset: none are written.
RESULT_BUCKET_ENV = "RESULT_BUCKET"


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyflow-media",
        description="Chunk a video into keyframe-aligned segments, or reassemble inferred segments "
        "with the source's audio. Reads and writes S3 (AWS_ENDPOINT_URL is honoured).",
        epilog="Exit codes: 0 ok (one JSON line on stdout), 1 failure, 2 not a video or bad arguments, "
        "143 SIGTERM. Failures print one line 'error: <Class>: <reason>' on stderr. With RESULT_BUCKET "
        "set, the command also writes s3://$RESULT_BUCKET/jobs/<job>/steps/<command>/result.json (the "
        'JSON line) or error.json ({"error": <Class>, "message": <reason>}).',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "chunk",
        help="split input/J/source.mp4 into segments/J/{i:05d}.mp4 + segments/J/manifest.json",
        description="Split the source at keyframes by stream copy (video only) into segments of about "
        "--segment-seconds; when keyframes are further apart than twice that, re-encode with libx264 "
        "and a keyframe forced every --segment-seconds (odd sizes are padded by 1 px). In the same "
        "pass, copy the source's audio (when it stream-copies into MP4) to segments/J/audio.m4a. Writes "
        "the segments and the audio (tagged storyflow-lifecycle=expire-intermediate) and a manifest: a "
        'JSON array of {"job_id","index","bucket","key","output_key","start","duration","frames"'
        '[,"audio_key"]} (output_key: where the inferred segment goes in the output bucket).',
    )
    c.add_argument("--job-id", required=True, type=keys.job_id, help="job id (^[a-z0-9][a-z0-9-]{7,63}$)")
    c.add_argument("--bucket", required=True, help="input bucket: holds the source; receives the segments")
    c.add_argument("--source-key", help="source object key (default input/<job-id>/source.mp4)")
    c.add_argument(
        "--segment-seconds", type=_positive, default=10.0, help="target segment length (default 10)"
    )
    c.add_argument("--jobs-table", help="DynamoDB jobs table: SET progress.total = number of segments")
    c.add_argument("--workdir", type=Path, help="scratch directory (default: the system temp dir)")

    r = sub.add_parser(
        "reassemble",
        help="join jobs/J/segments/*.mp4 with the source's audio into jobs/J/final.mp4",
        description="Read segments/J/manifest.json (input bucket), fetch jobs/J/segments/{i:05d}.mp4 "
        "(output bucket), concatenate them in order (stream copy when they share codec parameters, "
        "else libx264), mux the source's audio once (from the copy the manifest names, else from the "
        "source; copy, or AAC when its codec does not fit MP4), write jobs/J/final.mp4 with faststart, "
        "and tag input and output segments storyflow-lifecycle=expire-intermediate.",
    )
    r.add_argument("--job-id", required=True, type=keys.job_id, help="job id (^[a-z0-9][a-z0-9-]{7,63}$)")
    r.add_argument("--input-bucket", required=True, help="bucket of the source and the manifest")
    r.add_argument("--output-bucket", required=True, help="bucket of the inferred segments and the final")
    r.add_argument(
        "--source-key",
        help="source object key, read for its audio only when the manifest names no copy of it "
        "(default input/<job-id>/source.mp4)",
    )
    r.add_argument("--workdir", type=Path, help="scratch directory (default: the system temp dir)")

    k = sub.add_parser(
        "compose",
        help="compose story scenes (clip + narration + words.json) into jobs/J/final.mp4",
        description="Fit each scene's clip to its narration (trim, slow, loop, hold; never cut short of the "
        "narration), crossfade the scenes, loudness-normalise the narration, duck optional music under it, "
        "and add subtitles from the word timings (ASS with PlayResX/Y = the output size; burned with libass "
        "and/or a soft mov_text track), scaled with crop or pad to --aspect. --scenes is a JSON array of "
        '{"clip_uri", "narration_uri", "words_uri"?} (s3:// URIs).',
    )
    k.add_argument("--job-id", required=True, type=keys.job_id, help="job id (^[a-z0-9][a-z0-9-]{7,63}$)")
    k.add_argument("--output-bucket", required=True, help="bucket that receives the composed video")
    scenes = k.add_mutually_exclusive_group(required=True)
    scenes.add_argument("--scenes", type=_scenes, help="JSON array of the scenes' S3 URIs")
    scenes.add_argument(
        "--scenes-uri",
        type=s3_location,
        help="s3:// URI of that JSON array (a story's plan writes it: a 50-scene list is longer than "
        "ECS allows a command override to be)",
    )
    k.add_argument("--aspect", choices=["16:9", "9:16", "1:1"], default="16:9")
    k.add_argument("--subtitles", choices=["burned", "soft", "both", "none"], default="burned")
    k.add_argument(
        "--music-uri",
        type=_optional_s3,
        help="s3:// URI of background music (looped, ducked under the narration); empty: none",
    )
    k.add_argument("--crossfade", type=float, default=0.5, help="seconds between scenes (default 0.5)")
    k.add_argument("--short-side", type=int, default=720, help="output short side in pixels (default 720)")
    k.add_argument("--fit", choices=["crop", "pad"], default="crop", help="aspect by crop or pad")
    k.add_argument("--output-key", help="key of the result (default jobs/<job-id>/final.mp4)")
    k.add_argument("--workdir", type=Path, help="scratch directory (default: the system temp dir)")
    return parser


def _optional_s3(value: str) -> tuple[str, str] | None:
    """An s3:// URI, or None for an empty value (a state machine passes "" for an absent option)."""
    return s3_location(value) if value else None


def _scenes(value: str) -> list[dict[str, tuple[str, str]]]:
    """argparse type of --scenes: a non-empty JSON array of {clip_uri, narration_uri, words_uri?}."""
    try:
        items = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--scenes is not JSON: {exc}") from None
    return scene_list(items)


def scrub_paths(message: str, work: Path | None) -> str:
    """`message` without the container's scratch paths (a user cannot act on them): a file under the work
    directory is named relative to it (`segments/00000.mp4`), the directory itself `<workdir>`."""
    if work is None:
        return message
    for root in dict.fromkeys((str(work), str(work.resolve()))):
        message = message.replace(root + os.sep, "").replace(root, "<workdir>")
    return message


class StepReport:
    """Where the command leaves its result.json / error.json: s3://$RESULT_BUCKET/jobs/J/steps/<command>/,
    tagged intermediate (read once, by the state machine and the job's status; the job keeps the error).

    Without RESULT_BUCKET (a developer's shell, most tests) nothing is written.
    """

    def __init__(self, bucket: str | None, job: str, step: str) -> None:
        self.bucket, self.job, self.step = bucket or None, job, step

    @classmethod
    def from_env(cls, job: str, step: str) -> StepReport:
        return cls(os.environ.get(RESULT_BUCKET_ENV), job, step)

    def success(self, result: dict[str, Any]) -> None:
        """Write result.json; an error here fails the command (the result is part of its output)."""
        if self.bucket is not None:
            key = keys.step_result_key(self.job, self.step)
            s3io.put_json(s3io.s3_client(), self.bucket, key, result, intermediate=True)

    def failure(self, error: str, message: str, exit_code: int, quick: bool = False) -> None:
        """Write error.json; never raises, so the original error is always the one reported."""
        if self.bucket is None:
            return
        key = keys.step_error_key(self.job, self.step)
        document = {
            "error": error,
            "message": message,
            "job_id": self.job,
            "step": self.step,
            "exit_code": exit_code,
        }
        try:
            client = s3io.quick_s3_client() if quick else s3io.s3_client()
            s3io.put_json(client, self.bucket, key, document, intermediate=True)
        except Exception as exc:  # reported, then the original error stands
            where = s3io.uri(self.bucket, key)
            print(
                f"warning: could not write {where}: {type(exc).__name__}: {_one_line(exc)}",
                file=sys.stderr,
                flush=True,
            )


class _Signals:
    """SIGTERM/SIGINT unwind the command (Terminated); a watchdog hard-exits if unwinding stalls."""

    HANDLED = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, report: StepReport | None = None) -> None:
        self.received: Terminated | None = None
        self.report = report
        self._exiting = threading.Lock()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.HANDLED}
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():  # main() may run in-process (tests)
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already unwinding
        self.received = Terminated(signum, signal.Signals(signum).name)
        watchdog = threading.Timer(TERMINATE_GRACE_SECONDS, self.exit)
        watchdog.daemon = True
        watchdog.start()
        raise self.received

    def exit(self) -> NoReturn:
        """Print the one line, leave error.json if S3 answers quickly, and exit now, without joining
        S3 transfer threads still in flight."""
        with self._exiting:  # whoever comes first (main thread or watchdog) prints and exits
            assert self.received is not None
            print(f"error: Terminated: {self.received}", file=sys.stderr, flush=True)
            if self.report is not None:
                self.report.failure("Terminated", str(self.received), self.received.exit_code, quick=True)
            sys.stdout.flush()
            os._exit(self.received.exit_code)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or repr(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    started = time.monotonic()
    report = StepReport.from_env(args.job_id, args.command)
    signals = _Signals(report)
    work: Path | None = None
    try:
        with signals, tempfile.TemporaryDirectory(prefix="storyflow-media-", dir=args.workdir) as tmp:
            work = Path(tmp)
            result = COMMANDS[args.command](args, work)
            report.success(result)
    except Terminated:
        signals.exit()
    except MediaError as exc:
        return _fail(report, exc, exc.exit_code, work)
    except Exception as exc:
        log.info("failed", exc_info=True)  # the traceback, with -v only
        return _fail(report, exc, 1, work)
    log.info("%s done in %.2fs", args.command, time.monotonic() - started)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


def _fail(report: StepReport, exc: BaseException, exit_code: int, work: Path | None = None) -> int:
    """The one stderr line first (the logs have it even if S3 hangs), then error.json; neither shows
    the scratch directory's paths."""
    name, message = type(exc).__name__, scrub_paths(_one_line(exc), work)
    print(f"error: {name}: {message}", file=sys.stderr, flush=True)
    report.failure(name, message, exit_code)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
