"""Engines end to end on generated clips, and engine selection (Given/When/Then)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from storyflow_stereo.engines import create_engine, engine_name
from storyflow_stereo.engines.depthwarp import DepthWarpEngine
from storyflow_stereo.engines.stereocrafter import REQUIRED_FILES, StereoCrafterEngine
from storyflow_stereo.errors import ModelNotAvailable, NotAVideo, UnknownEngine
from storyflow_stereo.params import StereoParams
from storyflow_stereo.video import probe


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [round(float(f.pts * f.time_base), 4) for f in container.decode(stream)]


@pytest.fixture(scope="module")
def engine() -> DepthWarpEngine:
    eng = DepthWarpEngine(preset="ultrafast")
    eng.load()
    return eng


@pytest.mark.parametrize(("layout", "size"), [("full", (320, 90)), ("half", (160, 90))])
def test_depthwarp_keeps_every_frame_and_its_timing(
    engine: DepthWarpEngine, small_clip: Path, tmp_path: Path, layout: str, size: tuple[int, int]
) -> None:
    # Given a 12-frame 160x90 clip, When rendered, Then the SBS clip has the same frames at the same times
    out = tmp_path / "out.mp4"
    result = engine.render_file(small_clip, out, StereoParams(layout=layout))
    assert (result.frames, result.width, result.height) == (12, *size)
    assert result.seconds == pytest.approx(12 / 24)
    info, frames = probe(out)
    assert frames == 12
    assert (info.width, info.height) == size
    assert info.rate == 24
    assert frame_times(out) == frame_times(small_clip)
    # And the output is video only, H.264 yuv420p (reassemble adds the audio)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 0
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "libx264")
        assert stream.codec_context.pix_fmt == "yuv420p"


def test_depthwarp_handles_odd_sizes(engine: DepthWarpEngine, odd_clip: Path, tmp_path: Path) -> None:
    # Given a 161x91 clip, When rendered full and half, Then even-sized outputs keep all 7 frames
    for layout, size in (("full", (322, 92)), ("half", (162, 92))):
        out = tmp_path / f"{layout}.mp4"
        result = engine.render_file(odd_clip, out, StereoParams(layout=layout))
        assert (result.frames, result.width, result.height) == (7, *size)
        info, frames = probe(out)
        assert (frames, info.width, info.height) == (7, *size)


@pytest.mark.parametrize("content", [b"", b"definitely not a video" * 100])
def test_not_a_video_is_a_typed_error(engine: DepthWarpEngine, tmp_path: Path, content: bytes) -> None:
    # Given a zero-byte or garbage file, When rendered, Then NotAVideo (answered as 422)
    src = tmp_path / "bad.mp4"
    src.write_bytes(content)
    with pytest.raises(NotAVideo) as info:
        engine.render_file(src, tmp_path / "out.mp4", StereoParams())
    assert info.value.status == 422


# -- selection -------------------------------------------------------------------------------------


def test_engine_is_chosen_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no ENGINE, Then depthwarp; Given ENGINE=stereocrafter, Then the GPU engine (not loaded yet)
    monkeypatch.delenv("ENGINE", raising=False)
    assert isinstance(create_engine(), DepthWarpEngine)
    monkeypatch.setenv("ENGINE", " StereoCrafter ")
    assert engine_name() == "stereocrafter"
    assert isinstance(create_engine(), StereoCrafterEngine)
    # And an explicit name wins over the env
    assert isinstance(create_engine("depthwarp"), DepthWarpEngine)


def test_unknown_engine_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE", "magic3d")
    with pytest.raises(UnknownEngine) as info:
        create_engine()
    assert "magic3d" in str(info.value) and "depthwarp" in str(info.value)


def test_stereocrafter_without_weights_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an empty MODEL_DIR (and no torch here), When the GPU engine loads
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    engine = StereoCrafterEngine(code_dir=str(tmp_path / "no-code"))
    with pytest.raises(ModelNotAvailable) as info:
        engine.load()
    # Then ModelNotAvailable (503) names every missing path, the missing code and torch
    message = str(info.value)
    assert info.value.status == 503
    for rel in REQUIRED_FILES:
        assert str(tmp_path / rel) in message
    assert "DepthCrafter/*.safetensors" in message
    assert "no-code" in message
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in message


def test_stereocrafter_reports_only_the_missing_file(tmp_path: Path) -> None:
    # Given a model dir (as a SageMaker artifact with a weights/ folder) missing one config file
    root = tmp_path / "weights"
    for rel in REQUIRED_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    for folder in (
        "stable-video-diffusion-img2vid-xt-1-1/image_encoder",
        "stable-video-diffusion-img2vid-xt-1-1/vae",
        "DepthCrafter",
        "StereoCrafter/unet_diffusers",
    ):
        (root / folder / "diffusion_pytorch_model.safetensors").write_bytes(b"0")
    missing = root / "DepthCrafter" / "config.json"
    missing.unlink()
    # When loading, Then the message names that file and no other model file
    with pytest.raises(ModelNotAvailable) as info:
        StereoCrafterEngine(model_dir=tmp_path, code_dir=str(tmp_path)).load()
    message = str(info.value)
    assert "DepthCrafter/config.json" in message
    assert "model_index.json" not in message


def test_stereocrafter_render_before_load_is_refused(tmp_path: Path, small_clip: Path) -> None:
    with pytest.raises(ModelNotAvailable):
        StereoCrafterEngine(model_dir=tmp_path).render_file(small_clip, tmp_path / "o.mp4", StereoParams())


def test_stereocrafter_orchestration_without_the_models(small_clip: Path, tmp_path: Path) -> None:
    # Given the GPU engine with its two models stubbed (depth: a near box; inpainting: OpenCV's inpaint)
    import cv2
    import numpy as np

    class Stubbed(StereoCrafterEngine):
        def estimate_depth(self, frames: np.ndarray) -> np.ndarray:
            near = np.zeros(frames.shape[:3], np.float32)
            near[:, 30:60, 60:100] = 1.0
            return near

        def inpaint(self, warped: np.ndarray, holes: np.ndarray) -> np.ndarray:
            self.hole_pixels = int(holes.sum())
            return np.stack(
                [
                    cv2.inpaint(w, h.view(np.uint8), 3, cv2.INPAINT_TELEA)
                    for w, h in zip(warped, holes, strict=True)
                ]
            )

    engine = Stubbed(model_dir=tmp_path)
    engine._inpaint_pipe = object()  # "loaded"
    # When a clip is rendered, Then every frame comes out side by side, with holes handed to the inpainter
    out = tmp_path / "sbs.mp4"
    result = engine.render_file(small_clip, out, StereoParams(layout="full", baseline=0.05, convergence=0.0))
    assert (result.frames, result.width, result.height) == (12, 320, 90)
    assert engine.hole_pixels > 0
    info, frames = probe(out)
    assert (frames, info.width, info.height) == (12, 320, 90)


def test_variable_frame_rate_timing_is_kept(engine: DepthWarpEngine, tmp_path: Path) -> None:
    # Given a clip whose frames are irregularly spaced (variable frame rate)
    from fractions import Fraction

    from storyflow_stereo.video import synthetic_frame

    src = tmp_path / "vfr.mp4"
    pts = [0, 400, 1200, 1300, 2500, 2600, 4000]
    with av.open(str(src), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 72, "yuv420p"
        stream.time_base = Fraction(1, 10000)
        stream.codec_context.time_base = Fraction(1, 10000)
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(128, 72, i), format="bgr24")
            frame.pts, frame.time_base = p, Fraction(1, 10000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    # When rendered, Then each output frame keeps its source time, and the duration follows the stamps
    # (first to last, plus one average frame period for the last frame)
    out = tmp_path / "out.mp4"
    result = engine.render_file(src, out, StereoParams())
    assert result.frames == len(pts)
    assert frame_times(out) == frame_times(src)
    assert 0.4 < result.seconds < 0.5


def upright_picture(width: int, height: int) -> np.ndarray:
    """BGR: a bright top-left quadrant on a dark picture, so that any turn or flip shows."""
    picture = np.full((height, width, 3), 40, np.uint8)
    picture[: height // 2, : width // 2] = 230
    return picture


def rotated_clip(path: Path, rotation: int, frames: int = 6) -> Path:
    """A clip stored turned, with the display matrix (`rotation`, degrees counter-clockwise) that shows
    it as upright_picture(48, 64): how phones record portrait video."""
    turns = round(rotation / 90) % 4
    stored = np.ascontiguousarray(np.rot90(upright_picture(48, 64), -turns))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(rotation)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="bgr24")))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_rotated_source_renders_upright(engine: DepthWarpEngine, tmp_path: Path, rotation: int) -> None:
    # Given a clip stored turned, with a display matrix that shows it upright (48x64, bright top-left)
    source = rotated_clip(tmp_path / "rotated.mp4", rotation)
    # When it is rendered full side by side
    out = tmp_path / "out.mp4"
    result = engine.render_file(source, out, StereoParams(layout="full"))
    # Then the output is the upright picture twice (96x64), with no rotation left to apply
    assert (result.width, result.height) == (96, 64)
    with av.open(str(out)) as container:
        frame = next(container.decode(container.streams.video[0]))
        assert frame.rotation == 0
        left = frame.to_ndarray(format="gray")[:, :48].astype(float)
    quadrants = [left[:32, :24].mean(), left[:32, 24:].mean(), left[32:, :24].mean(), left[32:, 24:].mean()]
    assert quadrants[0] > 150 and max(quadrants[1:]) < 120, quadrants


def test_depthwarp_renders_below_720p_on_one_opencv_thread_and_720p_on_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2
    from storyflow_stereo.engines import depthwarp
    from storyflow_stereo.video import write_test_clip

    # Given OpenCV's pool with four threads, and a renderer that notes the threads each frame gets
    monkeypatch.setattr(depthwarp, "_POOL_THREADS", 4)
    seen: list[int] = []
    render = depthwarp.FrameRenderer.render_i420

    def noting(
        self: depthwarp.FrameRenderer, planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> np.ndarray:
        seen.append(cv2.getNumThreads())
        return render(self, planes)

    monkeypatch.setattr(depthwarp.FrameRenderer, "render_i420", noting)
    before = cv2.getNumThreads()
    small: list[int] = []
    try:
        engine = DepthWarpEngine(preset="ultrafast")
        # When a 160x96 clip, then a 1280x720 one, is rendered
        engine.render_file(
            write_test_clip(tmp_path / "s.mp4", 160, 96, 2), tmp_path / "s3d.mp4", StereoParams()
        )
        small = list(seen)
        engine.render_file(
            write_test_clip(tmp_path / "l.mp4", 1280, 720, 2), tmp_path / "l3d.mp4", StereoParams()
        )
    finally:
        cv2.setNumThreads(before)
    # Then the small clip's frames ran on one thread, the 720p clip's on the pool
    assert small == [1, 1]
    assert seen[2:] == [4, 4]
