"""A fast monocular depth *heuristic* for the CPU engine (no weights).

It is not a learned depth model: it combines cues that hold for most footage and is smoothed in
space and time so the warp never tears:

- vertical position (the ground plane): lower in the frame is nearer;
- local detail (edge density) and colour saturation: in-focus, saturated subjects tend to be near;
- haze (bright and desaturated, e.g. sky or fog): far (atmospheric perspective).

Maps are computed at a small working width (192 px) and are "nearness" maps: values in [0, 1],
1 = nearest to the camera. A temporal EMA removes flicker and is reset on scene cuts.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 192


def work_size(width: int, height: int, work_width: int = WORK_WIDTH) -> tuple[int, int]:
    """(w, h) of the low-resolution working grid for a source of ``width`` x ``height``."""
    w = max(8, min(work_width, width))
    h = max(8, round(height * w / width))
    return w, h


class DepthEstimator:
    """Per-frame nearness at low resolution, temporally smoothed with an EMA.

    ``smoothing`` is the EMA weight of the newest frame (1 = no smoothing). A frame whose mean
    absolute luminance difference from the previous one exceeds ``cut_threshold`` starts a new shot.
    """

    # Cue weights (sum to 1 so the raw combination stays in [0, 1]).
    W_VERTICAL = 0.45
    W_EDGES = 0.25
    W_SATURATION = 0.2
    W_CLEAR = 0.1
    MIN_SPAN = 0.35  # never stretch a nearly flat map by more than 1/MIN_SPAN (would amplify noise)

    def __init__(
        self, work_width: int = WORK_WIDTH, smoothing: float = 0.35, cut_threshold: float = 0.12
    ) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        self.work_width = work_width
        self.smoothing = smoothing
        self.cut_threshold = cut_threshold
        self._state: np.ndarray | None = None
        self._prev_gray: np.ndarray | None = None
        self._ramp: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self._state = None
        self._prev_gray = None

    def estimate(self, bgr: np.ndarray) -> np.ndarray:
        """Smoothed nearness of one BGR uint8 frame: float32 (h, w) at the working size, in [0, 1]."""
        height, width = bgr.shape[:2]
        w, h = work_size(width, height, self.work_width)
        small = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        yuv = cv2.cvtColor(small, cv2.COLOR_BGR2YUV)  # full-range BT.601, chroma centred on 128
        luma = yuv[..., 0].astype(np.float32) * (1.0 / 255.0)
        return self._update(luma, _chroma_saturation(yuv[..., 1], yuv[..., 2]))

    def estimate_yuv(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Like :meth:`estimate` for yuv420p planes (limited range), without any colour conversion."""
        height, width = y.shape
        w, h = work_size(width, height, self.work_width)
        small_y = cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)
        small_u = cv2.resize(u, (w, h), interpolation=cv2.INTER_AREA)
        small_v = cv2.resize(v, (w, h), interpolation=cv2.INTER_AREA)
        luma = (small_y.astype(np.float32) - 16.0) * (1.0 / 219.0)
        np.clip(luma, 0.0, 1.0, out=luma)
        return self._update(luma, _chroma_saturation(small_u, small_v))

    def _update(self, luma: np.ndarray, sat: np.ndarray) -> np.ndarray:
        near = self._single(luma, sat)
        prev = self._prev_gray
        cut = (
            self._state is None
            or prev is None
            or prev.shape != luma.shape
            or float(cv2.norm(luma, prev, cv2.NORM_L1)) / luma.size > self.cut_threshold
        )
        if cut:
            if self._state is not None:
                self.cuts += 1
            self._state = near
        else:
            assert self._state is not None
            # state = a * near + (1 - a) * state
            self._state = cv2.addWeighted(near, self.smoothing, self._state, 1.0 - self.smoothing, 0.0)
        self._prev_gray = luma
        return self._state

    def estimate_full(self, bgr: np.ndarray) -> np.ndarray:
        """Like :meth:`estimate`, resized to the frame's own size (H, W)."""
        near = self.estimate(bgr)
        height, width = bgr.shape[:2]
        full = cv2.resize(near, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(full, 0.0, 1.0, out=full)

    def _vertical(self, h: int, w: int) -> np.ndarray:
        if self._ramp is None or self._ramp.shape != (h, w):
            ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
            self._ramp = np.ascontiguousarray(np.broadcast_to(ramp, (h, w)))
        return self._ramp

    def _single(self, luma: np.ndarray, sat: np.ndarray) -> np.ndarray:
        h, w = luma.shape
        k = max(3, (w // 16) | 1)
        gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
        edges: np.ndarray = cv2.blur(cv2.magnitude(gx, gy), (k, k))  # float32 (MatLike admits ints)
        edges *= 1.0 / (2.0 * float(edges.mean()) + 1e-3)
        np.clip(edges, 0.0, 1.0, out=edges)
        sat_b = cv2.blur(sat, (k, k))
        haze = cv2.blur(luma * (1.0 - sat), (k, k))
        near: np.ndarray = (
            self.W_VERTICAL * self._vertical(h, w)
            + self.W_EDGES * edges
            + self.W_SATURATION * sat_b
            + self.W_CLEAR * (1.0 - haze)
        )
        near = cv2.GaussianBlur(near, (0, 0), sigmaX=max(1.0, 0.04 * w))
        lo, hi = float(near.min()), float(near.max())
        span = max(hi - lo, self.MIN_SPAN)
        near = (near - 0.5 * (lo + hi)) * (1.0 / span) + 0.5
        near = np.clip(near, 0.0, 1.0)  # (numpy types clip() of a float array with scalar bounds as Any)
        return near.astype(np.float32, copy=False)


def _chroma_saturation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A saturation proxy in [0, 1] from the chroma planes (distance from grey; pure red is about 1)."""
    du = u.astype(np.float32) - 128.0
    dv = v.astype(np.float32) - 128.0
    sat = cv2.magnitude(du, dv) * (1.0 / 110.0)
    return np.clip(sat, 0.0, 1.0, out=sat)
