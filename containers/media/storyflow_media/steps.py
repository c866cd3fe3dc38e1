"""The media container's steps: what `storyflow-media chunk`, `reassemble` and `compose` do with S3 around
the media work (chunk.py, reassemble.py, compose.py), each returning the JSON result the command prints.

Every intermediate a step writes is tagged for the lifecycle rule in the call that writes it; a NotAVideo or
TruncatedVideo names the S3 object, not the container's local file (`_named`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from storyflow_media import keys, s3io
from storyflow_media.audio import SourceAudio
from storyflow_media.chunk import chunk
from storyflow_media.compose import Scene, compose
from storyflow_media.errors import BadManifest, NotAVideo, TruncatedVideo
from storyflow_media.reassemble import reassemble

log = logging.getLogger("storyflow_media")


def s3_location(value: str) -> tuple[str, str]:
    """s3://bucket/key → (bucket, key)."""
    if not value.startswith("s3://") or "/" not in value[5:]:
        raise argparse.ArgumentTypeError(f"not an s3://bucket/key URI: {value[:120]!r}")
    bucket, key = value[5:].split("/", 1)
    if not bucket or not key:
        raise argparse.ArgumentTypeError(f"not an s3://bucket/key URI: {value[:120]!r}")
    return bucket, key


def scene_list(items: Any) -> list[dict[str, tuple[str, str]]]:
    """A compose step's scenes, from JSON: a non-empty list of {clip_uri, narration_uri, words_uri?}."""
    if not isinstance(items, list) or not items:
        raise argparse.ArgumentTypeError("--scenes must be a non-empty JSON array")
    scenes: list[dict[str, tuple[str, str]]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"clip_uri", "narration_uri"} <= item.keys():
            raise argparse.ArgumentTypeError(f"scene {i}: needs clip_uri and narration_uri")
        names = ("clip_uri", "narration_uri", "words_uri")
        scenes.append({name: s3_location(str(item[name])) for name in names if item.get(name)})
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
            listed = scene_list(s3io.get_json(s3, *args.scenes_uri))
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
