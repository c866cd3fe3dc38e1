"""Benchmark of the CPU stereo engine (depthwarp): warp alone at 1280x720, and end to end.

    .venv/bin/python bench/stereo_engine.py [--frames 120] [--presets superfast,ultrafast]

"warp" = depth heuristic + splatting + remap of both eyes + side-by-side packing, on frames already
decoded (the yuv420p production path, and the BGR path for reference). "end to end" = decode (PyAV)
+ warp + libx264 encode of a generated 1280x720 clip to a full-layout 2560x720 mp4. Wall-clock fps
depends on what else the machine runs, so CPU time per frame (and the fps it would allow with every
core to ourselves, "cpu-bound fps") and the load average are recorded too. Best of --repeat runs.
Prints a table and writes bench/results/stereo_engine.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("storyflow_stereo") is None:
    sys.path.insert(0, str(ROOT / "containers" / "stereo"))

import cv2  # noqa: E402
from storyflow_stereo.engines.depthwarp import DepthWarpEngine, FrameRenderer  # noqa: E402
from storyflow_stereo.params import StereoParams  # noqa: E402
from storyflow_stereo.video import DEFAULT_PRESET, VideoReader, probe, write_test_clip  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 24
TARGET_WARP_FPS = 30.0
TARGET_E2E_FPS = 24.0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def timed(fn: Any, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` wall time and the matching CPU time of ``fn()`` (which returns a frame count)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), _cpu()
        frames = fn()
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        if best is None or wall < best["wall_s"]:
            best = {"frames": frames, "wall_s": wall, "cpu_s": cpu}
    assert best is not None
    best["fps"] = best["frames"] / best["wall_s"]
    best["cpu_ms_per_frame"] = 1000 * best["cpu_s"] / best["frames"]
    # What the work would allow if every core of the machine were ours and fully used.
    best["cpu_bound_fps"] = (os.cpu_count() or 1) * best["frames"] / best["cpu_s"]
    return best


def bench(frames: int, presets: list[str], repeat: int, workdir: Path) -> dict[str, Any]:
    clip = write_test_clip(workdir / "clip720.mp4", WIDTH, HEIGHT, frames, fps=FPS, preset="veryfast")
    with VideoReader(clip) as reader:
        planes = [f.planes for f in reader.frames("yuv420p")]
    with VideoReader(clip) as reader:
        bgr = [f.bgr for f in reader.frames("bgr")]
    results: dict[str, Any] = {"warp": {}, "end_to_end": {}}

    for layout in ("full", "half"):
        renderer = FrameRenderer(StereoParams(layout=layout))
        renderer.render_i420(planes[0])  # warm the cached grids

        def warp_i420(r: FrameRenderer = renderer) -> int:
            for p in planes:
                r.render_i420(p)  # type: ignore[arg-type]
            return len(planes)

        results["warp"][f"yuv420p/{layout}"] = timed(warp_i420, repeat)

    bgr_renderer = FrameRenderer(StereoParams())
    bgr_renderer(bgr[0])

    def warp_bgr() -> int:
        for f in bgr:
            bgr_renderer(f)  # type: ignore[arg-type]
        return len(bgr)

    results["warp"]["bgr/full"] = timed(warp_bgr, repeat)

    for preset in presets:
        engine = DepthWarpEngine(preset=preset)
        engine.load()
        out = workdir / f"sbs-{preset}.mp4"

        def e2e(e: DepthWarpEngine = engine, o: Path = out) -> int:
            return e.render_file(clip, o, StereoParams()).frames

        row = timed(e2e, repeat)
        info, count = probe(out)
        assert count == frames, (count, frames)
        row.update(
            {
                "output": f"{info.width}x{info.height}",
                "mbit_per_s": round(out.stat().st_size * 8 / (frames / FPS) / 1e6, 1),
            }
        )
        results["end_to_end"][f"libx264 {preset}"] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=120, help="clip length (default: 120 = 5 s at 24 fps)")
    parser.add_argument("--presets", default="ultrafast,superfast,veryfast", help="x264 presets to compare")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs (default: 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stereo_engine.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="stereo-bench-") as tmp:
        results = bench(args.frames, [p for p in args.presets.split(",") if p], args.repeat, Path(tmp))
    doc = {
        "benchmark": "stereo_engine",
        "engine": "depthwarp",
        "source": f"{WIDTH}x{HEIGHT} @ {FPS} fps, {args.frames} frames (generated)",
        "default_preset": os.environ.get("STEREO_X264_PRESET", DEFAULT_PRESET),
        "targets": {"warp_fps": TARGET_WARP_FPS, "end_to_end_fps": TARGET_E2E_FPS},
        "machine": {
            "cpus": os.cpu_count(),
            "opencv_threads": cv2.getNumThreads(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        **results,
    }
    print(
        f"depthwarp on {os.cpu_count()} CPUs, load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(f"{'stage':<28}{'fps':>8}{'cpu ms/frame':>14}{'cpu-bound fps':>15}{'target':>9}  notes")
    for kind, target, rows in (
        ("warp", TARGET_WARP_FPS, results["warp"]),
        ("e2e", TARGET_E2E_FPS, results["end_to_end"]),
    ):
        for name, row in rows.items():
            note = "ok" if row["fps"] >= target else "MISS"
            if "output" in row:
                note += f", {row['output']}, {row['mbit_per_s']} Mbit/s"
            label = f"{kind} {name}"
            cols = f"{row['fps']:>8.1f}{row['cpu_ms_per_frame']:>14.1f}{row['cpu_bound_fps']:>15.1f}"
            print(f"{label:<28}{cols}{target:>9.0f}  {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
