"""Depth heuristic and depth-image-based rendering (Given/When/Then)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from storyflow_stereo.depth import DepthEstimator, work_size
from storyflow_stereo.engines.depthwarp import FrameRenderer
from storyflow_stereo.engines.stereocrafter import temporal_windows
from storyflow_stereo.params import StereoParams
from storyflow_stereo.video import synthetic_frame
from storyflow_stereo.warp import (
    SideBySideRenderer,
    output_size,
    pack_side_by_side,
    render_right_eye,
    splat_disparity,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def red_centroid_x(bgr: np.ndarray) -> float:
    mask = (bgr[..., 2] > 180) & (bgr[..., 1] < 80) & (bgr[..., 0] < 80)
    assert mask.any()
    return float(np.nonzero(mask)[1].mean())


def block_scene(width: int = 320, height: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """A textured background (far) with a red block (near) in the middle, and its exact nearness."""
    frame = synthetic_frame(width, height, 0)
    frame[..., 2] = np.minimum(frame[..., 2], 150)  # no red outside the block
    nearness = np.zeros((height, width), np.float32)
    y0, y1, x0, x1 = height // 3, 2 * height // 3, 3 * width // 8, 5 * width // 8
    frame[y0:y1, x0:x1] = (30, 30, 230)
    nearness[y0:y1, x0:x1] = 1.0
    return frame, nearness


# -- depth ---------------------------------------------------------------------------------------


def test_depth_map_has_working_shape_and_unit_range() -> None:
    # Given a 1280x720 frame, When depth is estimated, Then it is a float32 map at the working size in [0, 1]
    frame = synthetic_frame(1280, 720, 0)
    near = DepthEstimator().estimate(frame)
    assert near.shape == (108, 192) == work_size(1280, 720)[::-1]
    assert near.dtype == np.float32
    assert float(near.min()) >= 0.0 and float(near.max()) <= 1.0
    assert float(near.max() - near.min()) > 0.3  # it does say something about depth

    # And the full-size variant matches the frame
    full = DepthEstimator().estimate_full(frame)
    assert full.shape == (720, 1280)
    assert float(full.min()) >= 0.0 and float(full.max()) <= 1.0


def test_depth_puts_the_bottom_nearer_than_the_sky() -> None:
    # Given a frame with a hazy sky on top and textured ground below, When estimated,
    # Then the ground (bottom) is nearer than the sky (top)
    near = DepthEstimator().estimate(synthetic_frame(320, 180, 0))
    assert near[-10:].mean() > near[:10].mean() + 0.3


def test_depth_yuv_and_bgr_paths_agree() -> None:
    # Given the same frame as BGR and as yuv420p planes, When estimated, Then the maps are close
    frame = synthetic_frame(320, 180, 0)
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    y = i420[:180]
    u = i420[180:225].reshape(90, 160)
    v = i420[225:].reshape(90, 160)
    a = DepthEstimator().estimate(frame)
    b = DepthEstimator().estimate_yuv(y, u, v)
    assert float(np.abs(a - b).mean()) < 0.08


def test_depth_is_smoothed_over_time_and_reset_on_cuts() -> None:
    # Given alternating but similar frames, When estimated with the EMA, Then consecutive maps move less
    # than unsmoothed ones
    frames = [synthetic_frame(256, 144, i * 7) for i in range(6)]
    smooth, raw = DepthEstimator(smoothing=0.3), DepthEstimator(smoothing=1.0)
    s_prev = r_prev = None
    s_delta = r_delta = 0.0
    for f in frames:
        s, r = smooth.estimate(f).copy(), raw.estimate(f).copy()
        if s_prev is not None:
            s_delta += float(np.abs(s - s_prev).mean())
            r_delta += float(np.abs(r - r_prev).mean())
        s_prev, r_prev = s, r
    assert s_delta < r_delta

    # When a completely different shot follows, Then the EMA restarts (a cut is counted)
    cut = np.full((144, 256, 3), 255, np.uint8) - frames[-1]
    smooth.estimate(cut)
    assert smooth.cuts == 1


# -- splatting -----------------------------------------------------------------------------------


def test_splat_keeps_the_nearest_and_points_holes_at_the_background() -> None:
    # Given a row with a near block (disparity 4) in front of the screen plane (0)
    disp = np.zeros((1, 24), np.float32)
    disp[0, 8:14] = 4.0
    # When splatted into the left eye (+0.5): the block moves right by 2 and uncovers 2 pixels on its left
    eye, holes = splat_disparity(disp, 0.5)
    assert holes[0].nonzero()[0].tolist() == [8, 9]
    src_x = np.arange(24) - 0.5 * eye[0]
    # Then the block samples itself, shifted, and the holes sample background (left of the block) only
    assert src_x[10:16].tolist() == list(range(8, 14))
    assert (src_x[8:10] < 8).all()
    # When splatted into a right eye kept at full shift (-1): the holes open on the block's right
    eye, holes = splat_disparity(disp, -1.0)
    assert holes[0].nonzero()[0].tolist() == [10, 11, 12, 13]
    assert ((np.arange(24) + eye[0])[10:14] >= 14).all()


def test_smooth_disparity_has_no_holes() -> None:
    # Given a smooth ramp of disparity, When splatted, Then stretching leaves one-pixel cracks at most,
    # never holes, inside the frame (the frame borders may uncover content from outside the picture)
    disp = np.tile(np.linspace(-3, 3, 64, dtype=np.float32), (8, 1))
    for shift in (0.5, -0.5):
        _, holes = splat_disparity(disp, shift)
        assert not holes[:, 3:-3].any()


# -- rendering -----------------------------------------------------------------------------------


def test_near_content_shows_crossed_parallax_and_background_stays() -> None:
    # Given a near red block on a far background with convergence at the far plane
    frame, nearness = block_scene()
    sbs = SideBySideRenderer().render(frame, nearness, "full", baseline=0.05, convergence=0.0)
    left, right = sbs[:, :320], sbs[:, 320:]
    # Then the block moves right in the left eye and left in the right eye by half the disparity (8 px)
    cx = red_centroid_x(frame)
    assert red_centroid_x(left) == pytest.approx(cx + 8, abs=1.0)
    assert red_centroid_x(right) == pytest.approx(cx - 8, abs=1.0)
    # And the background (zero disparity) is untouched away from the block
    assert np.array_equal(left[:, :100], frame[:, :100])
    assert np.array_equal(right[:, -100:], frame[:, -100:])


def test_each_eye_stays_close_to_the_source_but_the_eyes_differ() -> None:
    # Given a 1280x720 frame and the heuristic depth, When rendered full side-by-side with defaults
    frame = synthetic_frame(1280, 720, 3)
    sbs = FrameRenderer(StereoParams())(frame)
    left, right = sbs[:, :1280], sbs[:, 1280:]
    # Then both eyes resemble the source, and there is parallax between them
    assert psnr(left, frame) > 20.0
    assert psnr(right, frame) > 20.0
    assert float(np.abs(left.astype(np.int16) - right.astype(np.int16)).mean()) > 2.0


def test_bigger_baseline_means_more_parallax() -> None:
    frame = synthetic_frame(320, 180, 0)

    def eye_gap(baseline: float) -> float:
        sbs = FrameRenderer(StereoParams(baseline=baseline))(frame)
        return float(np.abs(sbs[:, :320].astype(np.int16) - sbs[:, 320:].astype(np.int16)).mean())

    assert eye_gap(0.06) > eye_gap(0.02) > 0.0


@pytest.mark.parametrize(
    ("width", "height", "layout", "expected"),
    [
        (1280, 720, "full", (2560, 720)),
        (1280, 720, "half", (1280, 720)),
        (161, 91, "full", (322, 92)),
        (161, 91, "half", (162, 92)),
    ],
)
def test_layouts_have_the_documented_size(width: int, height: int, layout: str, expected: tuple) -> None:
    # Given a frame of any size (odd included), When rendered, Then the SBS is even-sized as documented
    assert output_size(width, height, layout) == expected
    frame = synthetic_frame(width, height, 0)
    sbs = FrameRenderer(StereoParams(layout=layout))(frame)
    assert sbs.shape == (expected[1], expected[0], 3)
    # And half layout squeezes each eye into half the width, still showing the whole frame
    if layout == "half" and width == 1280:
        squeezed = cv2.resize(frame, (640, 720), interpolation=cv2.INTER_AREA)
        assert psnr(sbs[:, :640], squeezed) > 18.0


def test_i420_path_matches_the_bgr_path() -> None:
    # Given a frame as BGR and as yuv420p, When both paths render it, Then the pictures agree
    frame = synthetic_frame(320, 180, 2)
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    planes = (i420[:180], i420[180:225].reshape(90, 160), i420[225:].reshape(90, 160))
    nearness = DepthEstimator().estimate(frame)
    renderer = SideBySideRenderer()
    bgr_sbs = renderer.render(frame, nearness, "full", 0.04, 0.5)
    yuv_sbs = renderer.render_i420(planes, nearness, "full", 0.04, 0.5)
    assert yuv_sbs.shape == (270, 640)
    assert psnr(cv2.cvtColor(yuv_sbs, cv2.COLOR_YUV2BGR_I420), bgr_sbs) > 28.0


def test_i420_path_handles_odd_sizes() -> None:
    # Given yuv420p planes of a 161x91 frame (chroma 81x46), When rendered, Then an even I420 SBS comes out
    y = np.full((91, 161), 120, np.uint8)
    u = np.full((46, 81), 100, np.uint8)
    v = np.full((46, 81), 150, np.uint8)
    near = np.tile(np.linspace(0, 1, 91, dtype=np.float32)[:, None], (1, 161))
    out = SideBySideRenderer().render_i420((y, u, v), near, "half", 0.05, 0.5)
    assert out.shape == (92 * 3 // 2, 162)
    assert np.all(out[:92] == 120) and np.all(out[92:115] == 100) and np.all(out[115:] == 150)


# -- shared with stereocrafter -------------------------------------------------------------------


def test_right_eye_for_stereocrafter_marks_disocclusions() -> None:
    # Given the block scene, When the right eye is splatted with the source kept as the left eye
    frame, nearness = block_scene()
    warped, holes = render_right_eye(frame, nearness, baseline=0.05, convergence=0.0)
    # Then the block moves left by the full disparity (16 px) and holes open on its right side only
    assert red_centroid_x(warped) == pytest.approx(red_centroid_x(frame) - 16, abs=1.5)
    assert warped.shape == frame.shape and holes.shape == frame.shape[:2]
    cols = np.nonzero(holes)[1]
    assert cols.size > 0 and cols.min() >= 5 * 320 // 8 - 16 - 2 and cols.max() <= 5 * 320 // 8 + 2


def test_pack_side_by_side_layouts() -> None:
    left = np.zeros((91, 161, 3), np.uint8)
    right = np.full((91, 161, 3), 255, np.uint8)
    assert pack_side_by_side(left, right, "full").shape == (92, 322, 3)
    half = pack_side_by_side(left, right, "half")
    assert half.shape == (92, 162, 3)
    assert half[:, :81].max() == 0 and half[:, 81:].min() == 255


@pytest.mark.parametrize(
    ("n", "chunk", "overlap"), [(1, 23, 3), (23, 23, 3), (24, 23, 3), (100, 23, 3), (250, 25, 5)]
)
def test_inpainting_windows_cover_every_frame_once(n: int, chunk: int, overlap: int) -> None:
    # Given a clip length, When split into StereoCrafter's temporal windows,
    # Then keeping output[carried:] of each window yields every frame exactly once, in order
    produced: list[int] = []
    for start, end, carried in temporal_windows(n, chunk, overlap):
        assert end - start <= chunk and 0 <= start < end <= n
        assert carried == 0 or carried >= overlap
        produced.extend(range(start + carried, end))
    assert produced == list(range(n))


@pytest.mark.parametrize(
    ("layout", "size"), [("full", (320, 180)), ("half", (320, 180)), ("full", (161, 91))]
)
def test_relative_and_absolute_maps_render_the_same(layout: str, size: tuple[int, int]) -> None:
    # Given OpenCV's relative-map remap (>= 4.10) and the absolute-map fallback for older ones
    if not hasattr(cv2, "WARP_RELATIVE_MAP"):
        pytest.skip("this OpenCV has only absolute maps")
    frame = synthetic_frame(*size, 1)
    nearness = DepthEstimator().estimate(frame)
    # When both render the same frame, Then the pictures match (up to interpolation rounding)
    rel = SideBySideRenderer(relative_maps=True).render(frame, nearness, layout, 0.04, 0.5)
    absolute = SideBySideRenderer(relative_maps=False).render(frame, nearness, layout, 0.04, 0.5)
    assert rel.shape == absolute.shape
    assert psnr(rel, absolute) > 40.0


# -- the fill of the missed pixels against the straightforward whole-row version ------------------


def _reference_splat(disp: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """The fill as first written: every step on whole rows (the oracle for the missed-pixels-only fill)."""
    h, w = disp.shape
    cols = np.arange(w, dtype=np.int32)
    tx = np.rint(cols[None, :] + np.float32(shift) * disp).astype(np.int32)
    inside = (tx >= 0) & (tx < w)
    target = np.full(h * w, -np.inf, dtype=np.float32)
    np.maximum.at(target, (np.arange(h, dtype=np.int32)[:, None] * w + tx)[inside], disp[inside])
    target = target.reshape(h, w)
    hit = np.isfinite(target)
    crack = np.zeros_like(hit)
    crack[:, 1:-1] = ~hit[:, 1:-1] & hit[:, :-2] & hit[:, 2:]
    left = np.maximum.accumulate(np.where(hit, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(hit, cols, w)[:, ::-1], axis=1)[:, ::-1]
    left_val = np.take_along_axis(target, np.clip(left, 0, w - 1), axis=1)
    right_val = np.take_along_axis(target, np.clip(right, 0, w - 1), axis=1)
    left_val[left < 0] = np.inf
    right_val[right >= w] = np.inf
    use_left = left_val <= right_val
    fill = np.where(use_left, left_val, right_val)
    edge = np.where(use_left, left, right)
    empty_row = ~np.isfinite(fill)
    fill[empty_row] = 0.0
    edge[empty_row] = np.broadcast_to(cols[None, :], (h, w))[empty_row]
    holes = ~hit & ~crack
    mirrored = fill + (2.0 / np.float32(shift)) * (cols[None, :] - edge).astype(np.float32)
    eye = np.where(hit, target, np.where(holes, mirrored, fill)).astype(np.float32, copy=False)
    return eye, holes


@pytest.mark.parametrize("shift", [0.5, -0.5, -1.0])
@pytest.mark.parametrize("seed", range(6))
def test_the_missed_pixels_fill_equals_the_whole_row_fill_bit_for_bit(shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(2, 90))
    # Given disparity fields of every kind: smooth ramps (cracks), blocks (holes), noise, and rows pushed
    # wholly out of the frame (rows nothing reaches)
    smooth = np.tile(np.linspace(-6, 6, w, dtype=np.float32), (h, 1)) * np.float32(rng.random() * 2)
    blocks = np.where(rng.random((h, w)) < 0.2, np.float32(rng.integers(2, 12)), np.float32(0))
    noise = (rng.standard_normal((h, w)) * 5).astype(np.float32)
    gone = noise.copy()
    gone[:: max(1, h // 3)] = np.float32(4 * w) * np.float32(np.sign(shift))
    for disp in (smooth, blocks.astype(np.float32), noise, gone, np.zeros((h, w), np.float32)):
        # When splatted  Then the eye disparity and the holes are exactly the whole-row version's
        eye, holes = splat_disparity(disp, shift)
        want_eye, want_holes = _reference_splat(disp, shift)
        assert eye.dtype == np.float32 and eye.shape == (h, w)
        assert np.array_equal(holes, want_holes)
        assert np.array_equal(eye.view(np.uint32), want_eye.view(np.uint32))
