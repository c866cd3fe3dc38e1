"""`storyflow-media compose`: scenes (clip + narration + word timings) into one narrated, subtitled video.

One ffmpeg run (imageio-ffmpeg's bundled binary, or $FFMPEG_BINARY, or ffmpeg on PATH: PyAV's FFmpeg has
no libass) with one filter graph:

- every clip is fitted to its scene's length (its narration, plus the crossfade into the next scene):
  trimmed when longer, slowed (up to ``MAX_SLOWDOWN``) or looped when shorter, and its last frame held
  for whatever is left, so a scene is never cut short of its narration;
- scaled to the output size with crop (fill) or pad (letterbox), 24 fps, yuv420p;
- joined with ``xfade`` crossfades; scene i starts at the sum of the narrations before it, so the
  narrations, concatenated, line up with their pictures and the video lasts exactly as long as the audio;
- narration loudness-normalised (``loudnorm``, EBU R128, single pass);
- optional background music, looped to length and ducked under the narration (``sidechaincompress``);
- subtitles from the word timings as ASS with PlayResX/Y = the output size (libass then sizes fonts in
  output pixels), burned in (``subtitles`` filter, libass) and/or muxed as a soft ``mov_text`` track.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av

from storyflow_media.errors import MediaError, NotAVideo

log = logging.getLogger("storyflow_media")

Aspect = Literal["16:9", "9:16", "1:1"]
Subtitles = Literal["burned", "soft", "both", "none"]
Fit = Literal["crop", "pad"]

ASPECTS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
SUBTITLE_MODES = ("burned", "soft", "both", "none")
FPS = 24
SAMPLE_RATE = 48_000
#: Slow a short clip down at most this much; beyond it the clip loops.
MAX_SLOWDOWN = 1.5
#: Where libass finds the subtitle font (the image installs fonts-dejavu-core); $STORYFLOW_FONTS_DIR wins.
FONTS_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_NAME = "DejaVu Sans"
#: A cue: at most this many words / characters, and never across a sentence end.
CUE_WORDS = 7
CUE_CHARS = 42


class ComposeFailed(MediaError):
    """ffmpeg could not compose the story (its last stderr lines say why)."""


class BadScene(MediaError):
    """A scene's inputs are unusable (no narration audio, malformed words.json)."""

    exit_code = 2


@dataclass(frozen=True)
class Scene:
    clip: Path
    narration: Path
    words: Path | None = None


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the composed video
    end: float


@dataclass(frozen=True)
class ComposeResult:
    seconds: float
    width: int
    height: int
    scenes: int
    narration_seconds: list[float]
    offsets: list[float]  # where each scene's narration starts
    crossfade: float
    fits: list[str]  # per scene: trim | slow | loop
    subtitles: str
    music: bool
    cues: int


def output_size(aspect: str, short_side: int = 720) -> tuple[int, int]:
    """(width, height) of `aspect` with its short side `short_side`, both even."""
    if aspect not in ASPECTS:
        raise BadScene(f"aspect must be one of {', '.join(ASPECTS)}, got {aspect!r}")
    w, h = ASPECTS[aspect]
    short = short_side - short_side % 2
    if w >= h:
        return _even(short * w / h), short
    return short, _even(short * h / w)


def _even(value: float) -> int:
    return int(round(value / 2) * 2)


def ffmpeg_exe() -> str:
    explicit = os.environ.get("FFMPEG_BINARY")
    if explicit:
        return explicit
    try:
        bundled: Any = importlib.import_module("imageio_ffmpeg")  # no type information
        return str(bundled.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise ComposeFailed("no ffmpeg: install imageio-ffmpeg or set FFMPEG_BINARY") from None
        return found


def media_seconds(path: Path, kind: Literal["audio", "video"]) -> float:
    """The duration of the first `kind` stream (else of the container), in seconds."""
    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio if kind == "audio" else container.streams.video
            if not streams:
                raise (
                    NotAVideo(f"no {kind} stream", path.name)
                    if kind == "video"
                    else BadScene(f"{path.name}: no audio stream")
                )
            stream = streams[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
            raise NotAVideo(f"{kind}: unknown duration", path.name)
    except av.error.FFmpegError as exc:
        raise NotAVideo(str(exc), path.name) from None


def read_words(path: Path, offset: float) -> list[Word]:
    """tts words.json (`{"words": [{"text", "start_ms", "end_ms"}]}`), shifted by `offset` seconds."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        return [
            Word(str(w["text"]), offset + w["start_ms"] / 1000, offset + w["end_ms"] / 1000)
            for w in document["words"]
            if str(w["text"]).strip()
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadScene(f"{path.name}: not a tts words.json: {type(exc).__name__}: {exc}") from None


def cues(words: list[Word]) -> list[tuple[float, float, str]]:
    """Group words into cues: ≤ CUE_WORDS words, ≤ CUE_CHARS characters, ending at a sentence end."""
    out: list[tuple[float, float, str]] = []
    current: list[Word] = []

    def flush() -> None:
        if current:
            out.append(
                (
                    current[0].start,
                    max(current[-1].end, current[0].start + 0.3),
                    " ".join(w.text for w in current),
                )
            )
            current.clear()

    for word in words:
        text = " ".join(w.text for w in [*current, word])
        if current and (len(current) >= CUE_WORDS or len(text) > CUE_CHARS):
            flush()
        current.append(word)
        if word.text.rstrip("\"')\u201d\u2019").endswith((".", "!", "?", "…")):
            flush()
    flush()
    # never overlapping: a cue ends where the next one starts at the latest
    return [(s, min(e, out[i + 1][0]) if i + 1 < len(out) else e, t) for i, (s, e, t) in enumerate(out)]


def write_ass(path: Path, lines: list[tuple[float, float, str]], width: int, height: int) -> None:
    """An ASS file whose canvas is the output size (PlayResX/Y), so font sizes are output pixels."""
    import pysubs2

    subs = pysubs2.SSAFile()
    subs.info["PlayResX"] = str(width)
    subs.info["PlayResY"] = str(height)
    subs.info["WrapStyle"] = "0"
    subs.info["ScaledBorderAndShadow"] = "yes"
    style = subs.styles["Default"]
    style.fontname = FONT_NAME
    style.fontsize = max(12, round(min(width, height) * 0.06))
    style.outline = max(1, round(style.fontsize / 12))
    style.shadow = 0
    style.marginv = round(height * 0.06)
    style.marginl = style.marginr = round(width * 0.05)
    style.alignment = pysubs2.Alignment.BOTTOM_CENTER
    for start, end, text in lines:
        subs.append(pysubs2.SSAEvent(start=round(start * 1000), end=round(end * 1000), text=text))
    subs.save(str(path), format_="ass")


def compose(
    scenes: list[Scene],
    output: Path,
    *,
    aspect: str = "16:9",
    short_side: int = 720,
    subtitles: str = "burned",
    music: Path | None = None,
    crossfade: float = 0.5,
    fit: Fit = "crop",
    work: Path | None = None,
    music_volume: float = 0.25,
) -> ComposeResult:
    """Compose `scenes` into `output` (MP4, H.264 + AAC [+ mov_text]); see the module docstring."""
    if not scenes:
        raise BadScene("no scenes")
    if subtitles not in SUBTITLE_MODES:
        raise BadScene(f"subtitles must be one of {', '.join(SUBTITLE_MODES)}, got {subtitles!r}")
    width, height = output_size(aspect, short_side)
    work = work or output.parent
    narr = [media_seconds(s.narration, "audio") for s in scenes]
    clips = [media_seconds(s.clip, "video") for s in scenes]
    if min(narr) <= 0:
        raise BadScene("a narration has no audio")
    xf = 0.0 if len(scenes) == 1 else max(0.0, min(crossfade, min(narr) / 2))
    offsets = [sum(narr[:i]) for i in range(len(scenes))]
    total = sum(narr)
    lengths = [n + (xf if i + 1 < len(scenes) else 0.0) for i, n in enumerate(narr)]

    args: list[str] = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    graph: list[str] = []
    fits: list[str] = []
    scale = (
        f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"
        if fit == "crop"
        else f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black"
    )
    for i, (scene, clip_s, length) in enumerate(zip(scenes, clips, lengths, strict=True)):
        ratio = length / clip_s if clip_s > 0 else float("inf")
        if ratio <= 1:
            mode, speed = "trim", ""
        elif ratio <= MAX_SLOWDOWN:
            mode, speed = "slow", f"setpts=PTS*{ratio:.6f},"
        else:
            mode, speed = "loop", ""
        fits.append(mode)
        if mode == "loop":
            args += ["-stream_loop", "-1"]
        args += ["-i", str(scene.clip.resolve())]
        graph.append(
            f"[{i}:v:0]{speed}setpts=PTS-STARTPTS,fps={FPS},{scale},setsar=1,format=yuv420p,"
            f"tpad=stop_mode=clone:stop_duration={length + 1:.3f},trim=duration={length:.6f},"
            f"setpts=PTS-STARTPTS,settb=1/{FPS * 1000}[v{i}]"
        )
    n = len(scenes)
    for i, scene in enumerate(scenes):
        args += ["-i", str(scene.narration.resolve())]
        graph.append(
            f"[{n + i}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
            f"apad,atrim=duration={narr[i]:.6f},asetpts=PTS-STARTPTS[a{i}]"
        )
    # video: chain of crossfades
    last = "v0"
    for i in range(1, n):
        graph.append(f"[{last}][v{i}]xfade=transition=fade:duration={xf:.6f}:offset={offsets[i]:.6f}[x{i}]")
        last = f"x{i}"
    # audio: narrations back to back, normalised; then music ducked under them
    graph.append(
        "".join(f"[a{i}]" for i in range(n))
        + f"concat=n={n}:v=0:a=1,loudnorm=I=-16:TP=-1.5:LRA=11,aresample={SAMPLE_RATE},"
        f"aformat=sample_fmts=fltp:channel_layouts=stereo,atrim=duration={total:.6f}[narr]"
    )
    audio_out = "narr"
    if music is not None:
        args += ["-stream_loop", "-1", "-i", str(music.resolve())]
        graph.append(
            f"[{2 * n}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
            f"atrim=duration={total:.6f},volume={music_volume}[music]"
        )
        graph.append("[narr]asplit=2[nk][nm]")
        graph.append("[music][nk]sidechaincompress=threshold=0.02:ratio=10:attack=20:release=500[duck]")
        graph.append("[nm][duck]amix=inputs=2:duration=first:normalize=0[mix]")
        audio_out = "mix"

    lines: list[tuple[float, float, str]] = []
    for scene, offset, seconds in zip(scenes, offsets, narr, strict=True):
        if scene.words is not None:  # a scene's cues stay inside its narration
            end = offset + seconds
            lines += [(s, min(e, end), t) for s, e, t in cues(read_words(scene.words, offset)) if s < end]
    ass = work / "subtitles.ass"
    want_subs = subtitles != "none" and bool(lines)
    if want_subs:
        write_ass(ass, lines, width, height)
    video_out = last
    if want_subs and subtitles in ("burned", "both"):
        fonts = os.environ.get("STORYFLOW_FONTS_DIR", FONTS_DIR)
        graph.append(f"[{last}]subtitles=filename={ass.name}:fontsdir={_escape(fonts)}[burned]")
        video_out = "burned"
    soft_index: int | None = None
    if want_subs and subtitles in ("soft", "both"):
        soft_index = 2 * n + (1 if music is not None else 0)
        args += ["-i", ass.name]

    args += ["-filter_complex", ";".join(graph), "-map", f"[{video_out}]", "-map", f"[{audio_out}]"]
    if soft_index is not None:
        args += ["-map", f"{soft_index}:s:0", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
    args += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-r", str(FPS), "-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE),
        "-t", f"{total:.6f}", "-movflags", "+faststart", str(output.resolve()),
    ]  # fmt: skip
    log.info("compose: %d scenes, %.2fs, %dx%d, fits %s", n, total, width, height, fits)
    proc = subprocess.run(args, capture_output=True, text=True, check=False, cwd=work)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise ComposeFailed(f"ffmpeg exited {proc.returncode}: {tail[:800]}")
    return ComposeResult(
        seconds=round(total, 6),
        width=width,
        height=height,
        scenes=n,
        narration_seconds=[round(s, 6) for s in narr],
        offsets=[round(s, 6) for s in offsets],
        crossfade=round(xf, 6),
        fits=fits,
        subtitles=subtitles if want_subs else "none",
        music=music is not None,
        cues=len(lines) if want_subs else 0,
    )


def _escape(value: str) -> str:
    """A filter option value: escape the characters the filter-graph parser treats specially."""
    for char in ("\\", ":", "'", "[", "]", ",", ";"):
        value = value.replace(char, "\\" + char)
    return value
