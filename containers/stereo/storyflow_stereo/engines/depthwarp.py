"""``depthwarp``: the CPU engine (no weights). Heuristic depth -> splatted disparity -> remap -> SBS."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from storyflow_stereo.depth import DepthEstimator
from storyflow_stereo.engines.base import Engine, RenderResult
from storyflow_stereo.params import StereoParams
from storyflow_stereo.video import VideoReader, VideoWriter, write_test_clip
from storyflow_stereo.warp import SideBySideRenderer, output_size

# OpenCV runs remap, resize and the filters on its thread pool. Below 720p the pool costs more than it
# saves: a 48-frame 160x96 segment's depth and warp took 89 ms of CPU (58 ms wall) on two threads and 49 ms
# (49 ms wall) on one; at 720p two threads were 5% faster for 37% more CPU (a 2-core machine, where decoding
# and x264 already use the other core). The setting is process-wide; the endpoint runs one segment at a time.
PARALLEL_MIN_PIXELS = 1280 * 720
_POOL_THREADS = cv2.getNumThreads()


def opencv_threads(width: int, height: int) -> int:
    """The OpenCV threads a ``width`` x ``height`` source is rendered with: 1 below 720p, else the pool's."""
    return _POOL_THREADS if width * height >= PARALLEL_MIN_PIXELS else 1


class DepthWarpEngine(Engine):
    name = "depthwarp"

    def __init__(self, preset: str | None = None, crf: str | None = None) -> None:
        self.preset = preset
        self.crf = crf

    def load(self) -> None:
        """Nothing to download or allocate: a tiny clip rendered end to end (decode, depth, warp, encode)
        warms OpenCV's thread pool, PyAV and libx264, so the first invocation runs as fast as the rest."""
        with tempfile.TemporaryDirectory(prefix="depthwarp-warm-") as tmp:
            src = write_test_clip(Path(tmp) / "warm.mp4", 48, 32, frames=2)
            # This class's pipeline, not an override's (a test engine may fail on purpose)
            DepthWarpEngine.render_file(self, src, Path(tmp) / "warm-sbs.mp4", StereoParams())

    def frame_renderer(self, params: StereoParams) -> FrameRenderer:
        return FrameRenderer(params)

    def render_file(self, src: Path, dst: Path, params: StereoParams) -> RenderResult:
        renderer = self.frame_renderer(params)
        with VideoReader(src) as reader:
            info = reader.info
            cv2.setNumThreads(opencv_threads(info.width, info.height))
            out_w, out_h = output_size(info.width, info.height, params.layout)
            with VideoWriter(dst, out_w, out_h, info.rate, info.time_base, self.preset, self.crf) as writer:
                for frame in reader.frames_prefetched("yuv420p"):
                    assert frame.planes is not None
                    writer.write_i420(renderer.render_i420(frame.planes), frame.pts)
                frames, seconds = writer.frames, writer.duration
        return RenderResult(frames=frames, width=out_w, height=out_h, seconds=seconds)


class FrameRenderer:
    """Stateful per-clip renderer (the depth EMA carries across frames): BGR frame -> SBS frame."""

    def __init__(self, params: StereoParams) -> None:
        self.params = params
        self.depth = DepthEstimator()
        self.sbs = SideBySideRenderer()

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """BGR (H, W, 3) -> side-by-side BGR (out_h, out_w, 3)."""
        p = self.params
        return self.sbs.render(bgr, self.depth.estimate(bgr), p.layout, p.baseline, p.convergence)

    def render_i420(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """yuv420p planes -> side-by-side I420 buffer (reused by the next call)."""
        p = self.params
        nearness = self.depth.estimate_yuv(*planes)
        return self.sbs.render_i420(planes, nearness, p.layout, p.baseline, p.convergence)
