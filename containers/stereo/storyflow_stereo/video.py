"""Video decode/encode with PyAV (no ffmpeg binary): BGR frames in, libx264 yuv420p mp4 out.

The writer keeps the source's time base and each frame's pts, so the output has exactly the source's
frame count and timing (variable frame rate included). Video only: reassemble muxes the audio.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np

from storyflow_stereo.errors import NotAVideo

DEFAULT_PRESET = "superfast"
DEFAULT_CRF = "18"
_END = object()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction
    frames: int  # as declared by the container (0 when unknown); the decoded count is authoritative


@dataclass(frozen=True)
class Frame:
    """A decoded frame: ``bgr`` (H, W, 3) or yuv420p ``planes`` (Y, U, V), whichever was asked for."""

    pts: int | None
    bgr: np.ndarray | None = None
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that make a frame upright, from its display matrix rotation
    (degrees counter-clockwise, as `VideoFrame.rotation` reads it); rounded to the nearest quarter."""
    return round(rotation / 90) % 4


def _legacy_rotate_tag(metadata: dict[str, str]) -> int:
    """The old `rotate` tag (degrees clockwise) some muxers write instead of a display matrix; 0 if none."""
    try:
        return -int(float(metadata.get("rotate", "0")))
    except ValueError:
        return 0


class VideoReader:
    """Decodes the first video stream of a file to BGR uint8 frames (decoder threads on).

    Display rotation (the display matrix, or an old `rotate` tag) is applied: frames come out upright and
    `info` gives the upright size, so what is rendered from them shows as the source does (a side-by-side
    frame cannot carry a rotation itself: turned, its two views would no longer be side by side).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self._container = av.open(str(path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise NotAVideo(f"not a video: {exc}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise NotAVideo("not a video: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        time_base = self._stream.time_base or Fraction(1, 90000)
        # The rotation is the stream's (a frame's side data says it too): known before the first frame.
        self._decoder = self._container.decode(self._stream)
        self._first: av.VideoFrame | None = None
        self._first_error: av.error.FFmpegError | None = None
        try:
            self._first = next(self._decoder, None)
        except av.error.FFmpegError as exc:
            self._first_error = exc  # frames() reports it
        rotation = self._first.rotation if self._first is not None else 0
        self.turns = quarter_turns(rotation or _legacy_rotate_tag(dict(self._stream.metadata)))
        width, height = int(ctx.width), int(ctx.height)
        if self.turns % 2:
            width, height = height, width
        self.info = VideoInfo(
            width=width,
            height=height,
            rate=Fraction(rate),
            time_base=Fraction(time_base),
            frames=int(self._stream.frames or 0),
        )
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise NotAVideo("not a video: the video stream has no size")

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, kind: str = "bgr") -> Iterator[Frame]:
        """Every frame in presentation order, as ``kind`` = ``"bgr"`` or ``"yuv420p"`` planes."""
        if kind not in ("bgr", "yuv420p"):
            raise ValueError(f"unknown frame kind {kind!r}")
        count = 0
        turns = self.turns
        try:
            for frame in self._decoded():
                count += 1
                if kind == "bgr":
                    bgr = frame.to_ndarray(format="bgr24")
                    yield Frame(frame.pts, bgr=np.ascontiguousarray(np.rot90(bgr, turns)) if turns else bgr)
                else:
                    planes = _yuv420p_planes(frame)
                    if turns:
                        y, u, v = (np.ascontiguousarray(np.rot90(plane, turns)) for plane in planes)
                        planes = (y, u, v)
                    yield Frame(frame.pts, planes=planes)
        except av.error.FFmpegError as exc:
            raise NotAVideo(f"not a video: decoding failed after {count} frames: {exc}") from exc
        if count == 0:
            raise NotAVideo("not a video: no decodable frame")

    def _decoded(self) -> Iterator[av.VideoFrame]:
        if self._first_error is not None:
            raise self._first_error
        first, self._first = self._first, None
        if first is not None:
            yield first
        yield from self._decoder

    def frames_prefetched(self, kind: str = "bgr", depth: int = 4) -> Iterator[Frame]:
        """:meth:`frames`, decoded on a background thread (PyAV releases the GIL while decoding)."""
        q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def produce() -> None:
            try:
                for item in self.frames(kind):
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(_END)
            except BaseException as exc:  # handed to the consumer, re-raised there
                q.put(exc)

        thread = threading.Thread(target=produce, name="stereo-decode", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()


class VideoWriter:
    """Encodes BGR frames (even width and height) to an H.264 yuv420p mp4, video only."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction,
        preset: str | None = None,
        crf: str | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs an even size, got {width}x{height}")
        self.width, self.height = width, height
        self.time_base = time_base
        self.frames = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._step = max(1, round(1 / (rate * time_base))) if rate and time_base else 1
        self._container = av.open(str(path), mode="w", format="mp4")
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.thread_count = 0
        stream.options = {
            "preset": preset or os.environ.get("STEREO_X264_PRESET", DEFAULT_PRESET),
            "crf": str(crf or os.environ.get("STEREO_X264_CRF", DEFAULT_CRF)),
        }
        self._stream = stream
        self._closed = False

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
            self._closed = True

    def write(self, bgr: np.ndarray, pts: int | None = None) -> None:
        """Encode a BGR (height, width, 3) frame."""
        if bgr.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {bgr.shape[1]}x{bgr.shape[0]}, writer is {self.width}x{self.height}")
        # cv2's BGR->I420 uses BT.601 limited range, the same matrix swscale assumes when decoding.
        self.write_i420(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), pts)

    def write_i420(self, i420: np.ndarray, pts: int | None = None) -> None:
        """Encode a (height * 3 / 2, width) I420 buffer (it is copied: the caller may reuse it)."""
        if i420.shape != (self.height * 3 // 2, self.width):
            raise ValueError(f"I420 buffer is {i420.shape}, writer is {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        elif self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # the encoder needs strictly increasing timestamps
        frame.pts = pts
        frame.time_base = self.time_base
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end (last frame lasts one period)."""
        if self._first_pts is None or self._last_pts is None:
            return 0.0
        return float((self._last_pts - self._first_pts + self._step) * self.time_base)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


def _yuv420p_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, U, V) uint8 arrays of a frame, converted to yuv420p first when it is another format."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    planes = []
    for plane in frame.planes:
        # memoryview: a zero-copy view that numpy's stubs accept (they predate the __buffer__ protocol)
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        # A view while the plane has no padding (it keeps the frame's buffer alive); else a copy.
        planes.append(np.ascontiguousarray(rows[:, : plane.width]))
    return planes[0], planes[1], planes[2]


def probe(path: str | os.PathLike[str]) -> tuple[VideoInfo, int]:
    """(info, decoded frame count) of a file; handy in tests and benchmarks."""
    with VideoReader(path) as reader:
        return reader.info, sum(1 for _ in reader.frames())


def write_test_clip(
    path: str | Path,
    width: int,
    height: int,
    frames: int,
    fps: int = 24,
    pix_fmt: str = "yuv420p",
    preset: str = "ultrafast",
) -> Path:
    """A small synthetic clip (textured ground, sky, a moving box): test and benchmark input."""
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.options = {"preset": preset, "crf": "20"}
        for i in range(frames):
            bgr = synthetic_frame(width, height, i)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def synthetic_frame(width: int, height: int, index: int = 0) -> np.ndarray:
    """A deterministic BGR frame with depth cues: hazy sky on top, textured ground, a saturated box."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.empty((height, width, 3), np.float32)
    sky = yy < height * 0.4
    frame[..., 0] = np.where(sky, 235, 60 + 40 * np.sin(xx / 9.0 + index * 0.3) * np.cos(yy / 7.0))
    frame[..., 1] = np.where(sky, 215, 110 + 50 * np.sin((xx + yy) / 13.0))
    frame[..., 2] = np.where(sky, 200, 70 + 30 * np.cos(xx / 5.0 - yy / 11.0))
    bw, bh = max(2, width // 5), max(2, height // 3)
    x0 = int((width - bw) * (0.5 + 0.4 * np.sin(index / 10.0)))
    y0 = int(height * 0.55) - bh // 2
    frame[y0 : y0 + bh, x0 : x0 + bw] = (30, 40, 220)
    stripes = (np.arange(bw) // max(1, bw // 8)) % 2 == 0
    frame[y0 : y0 + bh, x0 : x0 + bw][:, stripes] = (20, 200, 250)
    return np.clip(frame, 0, 255).astype(np.uint8)
