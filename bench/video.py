"""Benchmark of the video container's CPU engines, and what the GPU engine needs.

    .venv/bin/python bench/video.py [--repeat 2]

preview: one 5 s clip (121 frames, 24 fps) at 1280x720, text-only and from an image; "draw" = the frames,
"clip" = frames + libx264 encode (veryfast), as `storyflow-video` renders it. tiny: the wan code path on the
random tiny Wan pipeline (64x64, 9 frames): seconds per denoising step from two step counts (the
difference removes text encoding and VAE decode). Wan 2.2 TI2V-5B rows need a GPU and the weights (never
downloaded here). Wall time depends on what else the machine runs, so CPU seconds and the load average are
recorded too. Best of --repeat. Prints a table and writes bench/results/video.json.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("storyflow_video") is None:
    sys.path.insert(0, str(ROOT / "containers" / "video"))

import numpy as np  # noqa: E402
from storyflow_video.cli import render  # noqa: E402
from storyflow_video.engines.preview import PreviewEngine  # noqa: E402
from storyflow_video.request import parse  # noqa: E402

PROMPT = "A lighthouse at dusk, its beam sweeping over a restless sea"


def _cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


def best(runs: int, work: Callable[[], Any]) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run)."""
    results = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), _cpu()
        work()
        results.append((time.perf_counter() - wall, _cpu() - cpu))
    return min(results)


def preview_rows(repeat: int) -> list[dict[str, Any]]:
    from PIL import Image

    engine = PreviewEngine()
    job = parse({"prompt": PROMPT, "seed": 1})
    image = Image.fromarray((np.random.default_rng(0).random((720, 960, 3)) * 255).astype(np.uint8))
    rows = []
    for name, picture, request in (
        ("preview text 1280x720x121", None, job),
        (
            "preview image 1280x720x121",
            image,
            parse({"prompt": PROMPT, "seed": 1, "image_uri": "s3://b/k.png"}),
        ),
    ):
        draw, draw_cpu = best(
            repeat, lambda p=picture, r=request: list(engine.frames(r, 1, p, lambda d, t: None))
        )
        with tempfile.TemporaryDirectory() as tmp:
            clip, clip_cpu = best(
                repeat, lambda p=picture, r=request: render(r, engine, p, Path(tmp), lambda v, s, st: True)
            )
        rows.append(
            {
                "engine": name,
                "draw_fps": round(121 / draw, 1),
                "clip_seconds": round(clip, 2),
                "clip_fps": round(121 / clip, 1),
                "clip_cpu_seconds": round(clip_cpu, 2),
                "draw_cpu_seconds": round(draw_cpu, 2),
            }
        )
    return rows


def tiny_rows(repeat: int) -> list[dict[str, Any]]:
    if importlib.util.find_spec("diffusers") is None:
        return [{"engine": "tiny wan 64x64x9", "note": "needs the video-wan extra (make wan)"}]
    from storyflow_video.engines.wan import WanEngine

    built = time.perf_counter()
    engine = WanEngine.tiny()
    build_seconds = time.perf_counter() - built
    timings = {}
    for steps in (2, 8):
        job = parse({"prompt": "w1 w2", "width": 64, "height": 64, "num_frames": 9, "steps": steps})
        timings[steps] = best(repeat, lambda j=job: list(engine.frames(j, 0, None, lambda d, t: None)))
    per_step = (timings[8][0] - timings[2][0]) / 6
    return [
        {
            "engine": "tiny wan 64x64x9",
            "build_seconds": round(build_seconds, 2),
            "seconds_per_step": round(per_step, 4),
            "seconds_8_steps": round(timings[8][0], 3),
            "cpu_seconds_8_steps": round(timings[8][1], 3),
        }
    ]


def gpu_rows() -> list[dict[str, Any]]:
    note = "needs GPU + Wan2.2-TI2V-5B-Diffusers weights (MODEL_DIR); not run here"
    return [
        {"engine": "wan 1280x704x121, 50 steps (A10G 24 GB, cpu offload)", "note": note},
        {"engine": "wan 1280x704x121, 50 steps (RTX 4090; published < 9 min)", "note": note},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rows = preview_rows(args.repeat) + tiny_rows(args.repeat) + gpu_rows()
    machine = {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    print(f"video engines ({machine['cpus']} cpus, load {machine['load_average']})")
    for row in rows:
        print("  " + row["engine"].ljust(58) + "  ".join(f"{k}={v}" for k, v in row.items() if k != "engine"))
    out = ROOT / "bench" / "results" / "video.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
