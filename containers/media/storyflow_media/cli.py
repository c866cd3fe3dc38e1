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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from storyflow_media import __version__, keys, s3io
from storyflow_media.audio import SourceAudio
from storyflow_media.chunk import chunk
from storyflow_media.compose import Scene, compose
from storyflow_media.errors import BadManifest, MediaError, NotAVideo, Terminated, TruncatedVideo
from storyflow_media.reassemble import reassemble

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
        type=_s3,
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


def _s3(value: str) -> tuple[str, str]:
    """s3://bucket/key → (bucket, key)."""
    if not value.startswith("s3://") or "/" not in value[5:]:
        raise argparse.ArgumentTypeError(f"not an s3://bucket/key URI: {value[:120]!r}")
    bucket, key = value[5:].split("/", 1)
    if not bucket or not key:
        raise argparse.ArgumentTypeError(f"not an s3://bucket/key URI: {value[:120]!r}")
    return bucket, key


def _optional_s3(value: str) -> tuple[str, str] | None:
    """An s3:// URI, or None for an empty value (a state machine passes "" for an absent option)."""
    return _s3(value) if value else None


def _scenes(value: str) -> list[dict[str, tuple[str, str]]]:
    """argparse type of --scenes: a non-empty JSON array of {clip_uri, narration_uri, words_uri?}."""
    try:
        items = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--scenes is not JSON: {exc}") from None
    return _scene_list(items)


def _scene_list(items: Any) -> list[dict[str, tuple[str, str]]]:
    if not isinstance(items, list) or not items:
        raise argparse.ArgumentTypeError("--scenes must be a non-empty JSON array")
    scenes: list[dict[str, tuple[str, str]]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"clip_uri", "narration_uri"} <= item.keys():
            raise argparse.ArgumentTypeError(f"scene {i}: needs clip_uri and narration_uri")
        names = ("clip_uri", "narration_uri", "words_uri")
        scenes.append({name: _s3(str(item[name])) for name in names if item.get(name)})
    return scenes


def run_chunk(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    s3 = s3io.s3_client()
    job, bucket = args.job_id, args.bucket
    source_key = args.source_key or keys.source_key(job)
    source = s3io.download(s3, bucket, source_key, work / "source.mp4")
    log.info("downloaded %s (%d bytes)", s3io.uri(bucket, source_key), source.stat().st_size)
    with _named({source.name: s3io.uri(bucket, source_key)}):
        result = chunk(source, work / "segments", args.segment_seconds, audio_path=work / "audio.m4a")
    log.info("%d segments (%s)", len(result.segments), result.reason or "stream copy")
    audio = _manifest_audio(job, result.audio)
    manifest = [
        {
            "job_id": job,
            "index": seg.index,
            "bucket": bucket,
            "key": keys.segment_key(job, seg.index),
            "output_key": keys.inferred_segment_key(job, seg.index),
            "start": seg.start,
            "duration": seg.duration,
            "frames": seg.frames,
            **audio,
        }
        for seg in result.segments
    ]
    uploads = [(seg.path, keys.segment_key(job, seg.index), s3io.MP4) for seg in result.segments]
    if result.audio.copy is not None:
        uploads.append((result.audio.copy, keys.audio_key(job), s3io.M4A))

    # Every intermediate is tagged as it is written, so it expires whether or not its job gets to reassemble.
    s3io.parallel(lambda u: s3io.upload(s3, u[0], bucket, u[1], u[2], intermediate=True), uploads)
    manifest_key = keys.manifest_key(job)
    # last: its presence means every segment is there
    s3io.put_json(s3, bucket, manifest_key, manifest, intermediate=True)
    if args.jobs_table:
        s3io.set_progress_total(s3io.dynamodb_client(), args.jobs_table, job, len(manifest))
    return {
        "job_id": job,
        "bucket": bucket,
        "manifest_key": manifest_key,
        "segments": len(manifest),
        "frames": result.frames,
        "seconds": round(sum(seg.duration for seg in result.segments), 6),
        "reencoded": result.reencoded,
        "audio_key": audio.get("audio_key"),
    }


def _manifest_audio(job: str, audio: SourceAudio) -> dict[str, str | None]:
    """The audio field of every manifest entry: the key of chunk's audio copy; None when the source
    has no audio; no field at all when the audio stays in the source (reassemble reads it there)."""
    if audio.copy is not None:
        return {"audio_key": keys.audio_key(job)}
    if not audio.present:
        return {"audio_key": None}
    return {}


_ABSENT = object()


@dataclass(frozen=True)
class Manifest:
    """segments/J/manifest.json, checked: its entries in index order, and where the audio is."""

    entries: list[dict[str, Any]]
    audio_key: str | None  # chunk's copy of the source's audio (input bucket), when there is one
    audio_in_source: bool  # no copy: take the audio, if any, from the source (older manifests too)


def read_manifest(s3: Any, bucket: str, job: str) -> Manifest:
    key = keys.manifest_key(job)
    entries = s3io.get_json(s3, bucket, key)
    where = s3io.uri(bucket, key)
    if not isinstance(entries, list) or not entries:
        raise BadManifest(f"{where} is not a non-empty JSON array")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
            raise BadManifest(f"{where}: entry without an integer index: {str(entry)[:120]}")
    entries = sorted(entries, key=lambda e: e["index"])
    indexes = [e["index"] for e in entries]
    if indexes != list(range(len(entries))):
        raise BadManifest(f"{where}: indexes are not 0..{len(entries) - 1}: {indexes[:20]}")
    audio_key = entries[0].get("audio_key", _ABSENT)
    if any(e.get("audio_key", _ABSENT) != audio_key for e in entries):
        raise BadManifest(f"{where}: the entries disagree on audio_key")
    if audio_key is _ABSENT:
        return Manifest(entries, audio_key=None, audio_in_source=True)
    if audio_key is not None and audio_key != keys.audio_key(job):
        raise BadManifest(f"{where}: audio_key is not {keys.audio_key(job)}: {str(audio_key)[:120]}")
    return Manifest(entries, audio_key=audio_key, audio_in_source=False)


def _starts(entries: list[dict[str, Any]]) -> list[float] | None:
    """The manifest's segment start times, when every entry has one (they place VFR segments exactly)."""
    starts = [e.get("start") for e in entries]
    numbers = [s for s in starts if isinstance(s, int | float) and not isinstance(s, bool)]
    if len(numbers) == len(starts):
        return [float(s) for s in numbers]
    return None


def run_reassemble(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    s3 = s3io.s3_client()
    job, ib, ob = args.job_id, args.input_bucket, args.output_bucket
    manifest = read_manifest(s3, ib, job)
    entries = manifest.entries
    paths = [work / "segments" / f"{e['index']:05d}.mp4" for e in entries]
    downloads = [
        (ob, keys.inferred_segment_key(job, e["index"]), p) for e, p in zip(entries, paths, strict=True)
    ]
    audio: tuple[str, Path] | None = None  # (key in the input bucket, local path)
    if manifest.audio_key is not None:
        audio = (manifest.audio_key, work / "audio.m4a")
    elif manifest.audio_in_source:
        audio = (args.source_key or keys.source_key(job), work / "source.mp4")
    if audio is not None:
        downloads.append((ib, *audio))
    s3io.parallel(lambda d: s3io.download(s3, *d), downloads)
    log.info("downloaded %d segments and the audio (%s)", len(paths), audio and audio[0])
    final = work / "final.mp4"
    with _named({path.name: s3io.uri(bucket, key) for bucket, key, path in downloads}):
        result = reassemble(
            paths, final, audio_source=None if audio is None else audio[1], starts=_starts(entries)
        )
    final_key = keys.final_key(job)
    s3io.upload(s3, final, ob, final_key)
    log.info("wrote %s", s3io.uri(ob, final_key))
    # Nothing to tag here: chunk tagged the segments, the audio and the manifest as it wrote them, and the
    # engine its rendered segments (a failed or cancelled job's intermediates expire the same way).
    return {
        "job_id": job,
        "output_uri": s3io.uri(ob, final_key),
        "bucket": ob,
        "key": final_key,
        "segments": len(entries),
        "frames": result.frames,
        "source_frames": sum(e["frames"] for e in entries if isinstance(e.get("frames"), int)),
        "seconds": result.seconds,
        "width": result.width,
        "height": result.height,
        "video": result.video,
        "audio": result.audio,
        "audio_seconds": result.audio_seconds,
        "audio_uri": None if audio is None else s3io.uri(ib, audio[0]),
    }


def run_compose(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    s3 = s3io.s3_client()
    job, ob = args.job_id, args.output_bucket
    listed = args.scenes
    if listed is None:
        try:
            listed = _scene_list(s3io.get_json(s3, *args.scenes_uri))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise BadManifest(f"{s3io.uri(*args.scenes_uri)}: {exc}") from None
    downloads: list[tuple[str, str, Path]] = []
    scenes: list[Scene] = []
    for i, item in enumerate(listed):
        paths = {
            name: work / f"scene{i:03d}-{name.removesuffix('_uri')}{Path(key).suffix or '.bin'}"
            for name, (_bucket, key) in item.items()
        }
        downloads += [(*item[name], path) for name, path in paths.items()]
        scenes.append(Scene(paths["clip_uri"], paths["narration_uri"], paths.get("words_uri")))
    music: Path | None = None
    if args.music_uri:
        bucket, key = args.music_uri
        music = work / f"music{Path(key).suffix or '.bin'}"
        downloads.append((bucket, key, music))
    s3io.parallel(lambda d: s3io.download(s3, *d), downloads)
    log.info("downloaded %d scenes%s", len(scenes), " and the music" if music else "")
    final = work / "final.mp4"
    with _named({path.name: s3io.uri(bucket, key) for bucket, key, path in downloads}):
        result = compose(
            scenes,
            final,
            aspect=args.aspect,
            short_side=args.short_side,
            subtitles=args.subtitles,
            music=music,
            crossfade=args.crossfade,
            fit=args.fit,
            work=work,
        )
    final_key = args.output_key or keys.final_key(job)
    s3io.upload(s3, final, ob, final_key)
    log.info("wrote %s", s3io.uri(ob, final_key))
    uri = s3io.uri(ob, final_key)
    named = {"job_id": job, "output_uri": uri, "outputs": {"final.mp4": uri}, "bucket": ob, "key": final_key}
    return named | asdict(result)


COMMANDS = {"chunk": run_chunk, "reassemble": run_reassemble, "compose": run_compose}


@contextmanager
def _named(uris: Mapping[str, str]) -> Iterator[None]:
    """Report a NotAVideo or TruncatedVideo by the S3 URI of the file rather than its local name."""
    try:
        yield
    except NotAVideo as exc:
        if exc.where is None or exc.where not in uris:
            raise
        raise NotAVideo(exc.reason, uris[exc.where]) from None
    except TruncatedVideo as exc:
        if exc.where not in uris:
            raise
        raise TruncatedVideo(uris[exc.where], exc.size, exc.expected, exc.frames, exc.total_frames) from None


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
