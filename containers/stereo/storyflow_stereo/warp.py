"""Depth-image-based rendering shared by the engines.

Conventions: *nearness* maps are in [0, 1] (1 = nearest). Disparity is in pixels, positive for content
in front of the screen plane (crossed): it appears shifted right in the left eye and left in the right
eye. An eye at ``shift`` (left = +0.5, right = -0.5 when both eyes are synthesised; right = -1.0 when
the source is kept as the left eye) shows source content from ``x`` at ``x + shift * disparity``.

Rendering is two steps:

1. :func:`splat_disparity` forward-warps the *disparity map* into the eye (z-buffer: nearer wins),
   closes one-pixel cracks, and points disocclusion holes at the *farther* neighbour (background),
   returning the eye's own disparity map and its hole mask.
2. A backward ``cv2.remap`` samples the source at ``x - shift * eye_disparity(x)``: occlusion edges stay
   on the foreground and holes show the adjacent background mirrored into them (disparity-aware fill,
   no inpainting). The StereoCrafter engine uses the same two steps and then inpaints the hole mask.

:class:`SideBySideRenderer` does both eyes and the side-by-side packing in one ``remap`` call with
precomputed grids, so the whole frame costs a few milliseconds at 720p.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LEFT_SHIFT = 0.5
RIGHT_SHIFT = -0.5


def output_size(width: int, height: int, layout: str) -> tuple[int, int]:
    """(width, height) of the side-by-side frame; both even (yuv420p needs it).

    ``full``: two source-width eyes (2W). ``half``: two eyes squeezed into the source width (rounded up
    to even). An odd height gets its last row repeated.
    """
    if layout == "full":
        out_w = 2 * width
    elif layout == "half":
        out_w = width + (width % 2)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return out_w, height + (height % 2)


def disparity_from_nearness(nearness: np.ndarray, baseline_px: float, convergence: float) -> np.ndarray:
    """Disparity in pixels: ``baseline_px * (nearness - convergence)``; zero on the convergence plane."""
    disp = (nearness.astype(np.float32, copy=False) - np.float32(convergence)) * np.float32(baseline_px)
    return disp.astype(np.float32, copy=False)


def splat_disparity(disp: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward-warp ``disp`` (H, W, pixels) into the view displaced by ``shift * disp``.

    Returns ``(eye_disp, holes)``: the disparity to sample the source with from the new view (float32,
    H x W) and a bool mask of disoccluded pixels that no source pixel reached. Inside a hole the
    returned disparity points *into the background* beside it, mirrored about the hole's edge, so a
    backward warp shows background texture there instead of smearing the occluding foreground.
    """
    if shift == 0:
        raise ValueError("shift must be non-zero")
    disp = np.ascontiguousarray(disp, dtype=np.float32)
    h, w = disp.shape
    cols = np.arange(w, dtype=np.int32)
    tx = np.rint(cols[None, :] + np.float32(shift) * disp).astype(np.int32)
    inside = (tx >= 0) & (tx < w)
    flat = (np.arange(h, dtype=np.int32)[:, None] * w + tx)[inside]
    target = np.full(h * w, -np.inf, dtype=np.float32)
    # z-buffer: the nearest (largest disparity) source pixel landing on a target pixel wins.
    np.maximum.at(target, flat, disp[inside])
    hit = np.isfinite(target)
    holes = np.zeros(h * w, dtype=bool)
    # Only the missed pixels are filled (on real frames a few per cent of them: 156 of 15,360 at 160x96),
    # each from its nearest hit on either side in its row, found by a binary search of the hits.
    missed = np.flatnonzero(~hit)
    if missed.size:
        target[missed], holes[missed] = _fill_misses(target, np.flatnonzero(hit), missed, w, shift)
    return target.reshape(h, w), holes.reshape(h, w)


def _fill_misses(
    target: np.ndarray, hits: np.ndarray, missed: np.ndarray, w: int, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    """The eye disparity and hole flag of each missed pixel of a splatted frame (flat ``target``, -inf where
    missed; ``hits`` and ``missed`` its sorted flat indices, rows ``w`` wide): a crack (both row neighbours
    hit) takes the farther neighbour's disparity, a hole the background's beside it mirrored about the
    hole's edge, and a row nothing reached the screen plane (0)."""
    row_start = (missed // w) * w
    col = missed - row_start
    # The nearest hit before and after each miss, if it is in the miss's row.
    after = np.searchsorted(hits, missed)
    before = after - 1
    last = max(hits.size - 1, 0)
    left = hits[np.clip(before, 0, last)] if hits.size else np.full(missed.size, -1)
    right = hits[np.clip(after, 0, last)] if hits.size else np.full(missed.size, -1)
    has_left = (before >= 0) & (left >= row_start)
    has_right = (after < hits.size) & (right < row_start + w)
    left_val = np.where(has_left, target[np.where(has_left, left, 0)], np.inf).astype(np.float32)
    right_val = np.where(has_right, target[np.where(has_right, right, 0)], np.inf).astype(np.float32)
    left_col, right_col = left - row_start, right - row_start
    # One-pixel cracks (both neighbours hit) come from stretching a surface, not from occlusion.
    crack = has_left & has_right & (left_col == col - 1) & (right_col == col + 1)
    # Disocclusions show what is behind: take the farther (smaller disparity) neighbour.
    use_left = left_val <= right_val
    fill = np.where(use_left, left_val, right_val)
    edge = np.where(use_left, left_col, right_col)
    empty_row = ~np.isfinite(fill)  # a row that nothing reached: screen plane
    fill[empty_row] = 0.0
    edge[empty_row] = col[empty_row]
    # Holes mirror the background about the hole edge n:
    # source x = (n - shift * d_n) + (n - x)  <=>  disparity = d_n + 2 * (x - n) / shift.
    mirrored = fill + (2.0 / np.float32(shift)) * (col - edge).astype(np.float32)
    eye = np.where(crack, fill, mirrored).astype(np.float32, copy=False)
    return eye, ~crack


def backward_warp(src: np.ndarray, eye_disp: np.ndarray, shift: float) -> np.ndarray:
    """Sample ``src`` at ``x - shift * eye_disp(x)`` (same size; ``eye_disp`` in source pixels)."""
    h, w = src.shape[:2]
    if eye_disp.shape != (h, w):
        eye_disp = cv2.resize(eye_disp, (w, h), interpolation=cv2.INTER_LINEAR)
    map_x = np.arange(w, dtype=np.float32)[None, :] - np.float32(shift) * eye_disp
    map_y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    return cv2.remap(
        src, map_x, np.ascontiguousarray(map_y), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


# OpenCV >= 4.10 can take maps relative to the output pixel: constant offsets then survive the low-res ->
# full-res resize exactly, so a full-layout map is two cv2.resize calls and no full-size arithmetic.
_RELATIVE: int | None = getattr(cv2, "WARP_RELATIVE_MAP", None)


@dataclass
class _Geometry:
    out_w: int
    out_h: int
    eye_w: int
    relative: bool  # maps are offsets from the output pixel (cv2.WARP_RELATIVE_MAP) or absolute
    eye_base: list[np.ndarray | float]  # per eye: map_x before the disparity shift (a constant or a row)
    map_x: np.ndarray  # (out_h, out_w) reused buffer
    map_y: np.ndarray  # (out_h, out_w) rows: identity (last row repeated when the height is padded)
    chroma_map_x: np.ndarray  # (out_h/2, out_w/2) reused buffer for the yuv420p chroma planes
    chroma_map_y: np.ndarray  # (out_h/2, out_w/2)
    i420: np.ndarray  # (out_h * 3 / 2, out_w) reused output buffer in the layout yuv420p frames take

    @property
    def flags(self) -> int:
        if not self.relative:
            return cv2.INTER_LINEAR
        assert _RELATIVE is not None  # SideBySideRenderer refuses relative maps without it
        return cv2.INTER_LINEAR | _RELATIVE


class SideBySideRenderer:
    """Renders side-by-side stereo frames from a frame and a (low-resolution) nearness map.

    Both eyes are written by one ``cv2.remap`` per plane with grids cached per (size, layout); the
    yuv420p path (:meth:`render_i420`) works on the decoder's planes directly, with no colour conversion.
    """

    def __init__(self, relative_maps: bool | None = None) -> None:
        self.relative = _RELATIVE is not None if relative_maps is None else relative_maps
        if self.relative and _RELATIVE is None:
            raise ValueError("this OpenCV has no WARP_RELATIVE_MAP")
        self._geometry: dict[tuple[int, int, str], _Geometry] = {}

    def _geo(self, width: int, height: int, layout: str) -> _Geometry:
        key = (width, height, layout)
        geo = self._geometry.get(key)
        if geo is None:
            geo = self._make_geo(width, height, layout)
            self._geometry[key] = geo
        return geo

    def _make_geo(self, width: int, height: int, layout: str) -> _Geometry:
        out_w, out_h = output_size(width, height, layout)
        eye_w = out_w // 2
        # Source x of each eye column before the shift (identity for "full", a squeeze for "half").
        src_x = ((np.arange(eye_w, dtype=np.float64) + 0.5) * (width / eye_w) - 0.5).astype(np.float32)
        eye_base: list[np.ndarray | float] = []
        for eye in (0, 1):
            out_x = np.arange(eye_w, dtype=np.float32) + eye * eye_w
            base = src_x - out_x if self.relative else src_x
            eye_base.append(float(base[0]) if np.all(base == base[0]) else base[None, :])
        chroma_shape = (out_h // 2, out_w // 2)
        if self.relative:
            # Offsets of 0: rows map to themselves and BORDER_REPLICATE repeats the last one when padded.
            map_y = np.zeros((out_h, out_w), np.float32)
            chroma_map_y = np.zeros(chroma_shape, np.float32)
        else:
            rows = np.minimum(np.arange(out_h, dtype=np.float32), np.float32(height - 1))
            map_y = np.ascontiguousarray(np.broadcast_to(rows[:, None], (out_h, out_w)))
            chroma_rows = np.minimum(
                np.arange(out_h // 2, dtype=np.float32), np.float32((height + 1) // 2 - 1)
            )
            chroma_map_y = np.ascontiguousarray(np.broadcast_to(chroma_rows[:, None], chroma_shape))
        return _Geometry(
            out_w=out_w,
            out_h=out_h,
            eye_w=eye_w,
            relative=self.relative,
            eye_base=eye_base,
            map_x=np.empty((out_h, out_w), np.float32),
            map_y=map_y,
            chroma_map_x=np.empty(chroma_shape, np.float32),
            chroma_map_y=chroma_map_y,
            i420=np.empty((out_h * 3 // 2, out_w), np.uint8),
        )

    def eye_disparities(
        self, nearness: np.ndarray, width: int, baseline: float, convergence: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left and right eye disparity maps at the nearness map's resolution, in *source* pixels."""
        w_low = nearness.shape[1]
        disp_low = disparity_from_nearness(nearness, baseline * w_low, convergence)
        to_src = np.float32(width / w_low)
        left, _ = splat_disparity(disp_low, LEFT_SHIFT)
        right, _ = splat_disparity(disp_low, RIGHT_SHIFT)
        return left * to_src, right * to_src

    def _maps(
        self, width: int, height: int, nearness: np.ndarray, layout: str, baseline: float, convergence: float
    ) -> _Geometry:
        geo = self._geo(width, height, layout)
        eyes = self.eye_disparities(nearness, width, baseline, convergence)
        ew = geo.eye_w
        for eye, (disp, shift, base) in enumerate(
            zip(eyes, (LEFT_SHIFT, RIGHT_SHIFT), geo.eye_base, strict=True)
        ):
            # map_x = base - shift * disparity, built at low resolution where the base is a constant
            # (linear interpolation keeps constants exact), resized straight into this eye's half.
            low = disp * np.float32(-shift)
            if isinstance(base, float):
                low += np.float32(base)
            view = geo.map_x[:, eye * ew : (eye + 1) * ew]
            cv2.resize(low, (ew, geo.out_h), dst=view, interpolation=cv2.INTER_LINEAR)
            if not isinstance(base, float):
                view += base
        return geo

    def render(
        self, frame: np.ndarray, nearness: np.ndarray, layout: str, baseline: float, convergence: float
    ) -> np.ndarray:
        """Side-by-side frame (out_h, out_w[, C]) of a (H, W[, C]) uint8 frame, e.g. BGR."""
        height, width = frame.shape[:2]
        geo = self._maps(width, height, nearness, layout, baseline, convergence)
        return cv2.remap(frame, geo.map_x, geo.map_y, geo.flags, borderMode=cv2.BORDER_REPLICATE)

    def render_i420(
        self,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray],
        nearness: np.ndarray,
        layout: str,
        baseline: float,
        convergence: float,
    ) -> np.ndarray:
        """Side-by-side yuv420p frame from yuv420p planes (Y: H x W, U/V: ceil(H/2) x ceil(W/2)).

        Returns the (out_h * 3 / 2, out_w) I420 buffer ``av.VideoFrame.from_ndarray`` takes; the buffer
        is reused by the next call, so consume it first. Chroma is co-sited with even luma columns, so
        a chroma sample's (absolute or relative) x is the luma map's at (2i, 2j), halved.
        """
        y, u, v = planes
        height, width = y.shape
        geo = self._maps(width, height, nearness, layout, baseline, convergence)
        out_w, out_h = geo.out_w, geo.out_h
        flat = geo.i420.reshape(-1)
        n_y, n_c = out_w * out_h, (out_w // 2) * (out_h // 2)
        dst_y = flat[:n_y].reshape(out_h, out_w)
        dst_u = flat[n_y : n_y + n_c].reshape(out_h // 2, out_w // 2)
        dst_v = flat[n_y + n_c :].reshape(out_h // 2, out_w // 2)
        border, flags = cv2.BORDER_REPLICATE, geo.flags
        cv2.remap(y, geo.map_x, geo.map_y, flags, dst=dst_y, borderMode=border)
        np.multiply(geo.map_x[::2, ::2], np.float32(0.5), out=geo.chroma_map_x)
        cv2.remap(u, geo.chroma_map_x, geo.chroma_map_y, flags, dst=dst_u, borderMode=border)
        cv2.remap(v, geo.chroma_map_x, geo.chroma_map_y, flags, dst=dst_v, borderMode=border)
        return geo.i420


def render_right_eye(
    bgr: np.ndarray, nearness: np.ndarray, baseline: float, convergence: float, splat_width: int = 640
) -> tuple[np.ndarray, np.ndarray]:
    """The right eye for a source kept as the left eye: ``(warped, holes)`` at the source size.

    Disparity ``baseline * W * (nearness - convergence)`` is splatted (at most ``splat_width`` wide)
    with the full shift (``-1``); ``holes`` marks disocclusions for an inpainting model to fill. Used by
    the StereoCrafter engine (its splatting step) and testable without any weights.
    """
    height, width = bgr.shape[:2]
    sw = min(splat_width, width)
    sh = max(1, round(height * sw / width))
    near = cv2.resize(nearness.astype(np.float32, copy=False), (sw, sh), interpolation=cv2.INTER_LINEAR)
    disp = disparity_from_nearness(near, baseline * sw, convergence)
    eye_disp, holes = splat_disparity(disp, -1.0)
    eye_disp = cv2.resize(eye_disp * np.float32(width / sw), (width, height), interpolation=cv2.INTER_LINEAR)
    holes_full = cv2.resize(holes.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return backward_warp(bgr, eye_disp, -1.0), holes_full.astype(bool)


def pack_side_by_side(left: np.ndarray, right: np.ndarray, layout: str) -> np.ndarray:
    """Two (H, W, C) eyes -> one side-by-side frame of :func:`output_size` (squeezed for ``half``)."""
    height, width = left.shape[:2]
    out_w, out_h = output_size(width, height, layout)
    eye_w = out_w // 2
    if eye_w != width:
        left = cv2.resize(left, (eye_w, height), interpolation=cv2.INTER_AREA)
        right = cv2.resize(right, (eye_w, height), interpolation=cv2.INTER_AREA)
    sbs = np.concatenate([left, right], axis=1)
    if out_h != height:
        sbs = np.concatenate([sbs, sbs[-1:]], axis=0)
    return sbs
