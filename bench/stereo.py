"""Stereo benchmark (issue targets), one table:

- chunk + reassemble vs a plain stream copy of a 120 s 1080p file (bench/stereo_media.py; target ≤ 2x)
- depthwarp fps at 720p, warp alone (target ≥ 30) and decode+warp+encode (target ≥ 24)
  (bench/stereo_engine.py)
- orchestration overhead per segment on the local cloud: a job whose media work is tiny (160x96),
  so its wall time is almost all orchestration (API, EventBridge, ECS agent, Distributed Map,
  task tokens, SNS), divided by its segment count.

    .venv/bin/python bench/stereo.py [--skip-media] [--skip-engine] [--segments 12]

Writes bench/results/stereo.json (and the two sub-benchmarks' own JSON files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def sub_benchmark(script: str) -> dict[str, Any]:
    subprocess.run([sys.executable, str(ROOT / "bench" / script)], check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads((RESULTS / script.replace(".py", ".json")).read_text())
    return result


def orchestration_overhead(segments: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from storyflow_local import LocalCloud, LocalCloudConfig
    from storyflow_local.samples import make_clip

    seconds_per_segment = 2
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(
            Path(tmp) / "tiny.mp4",
            seconds=segments * seconds_per_segment,
            width=160,
            height=96,
            keyframe_seconds=seconds_per_segment,
        )
        config = LocalCloudConfig(
            parameters={"SegmentSeconds": str(seconds_per_segment), "MapMaxConcurrency": "4"},
            write_state_file=False,
        )
        with LocalCloud(config) as cloud:
            api = cloud.api_url
            accepted = requests.post(
                f"{api}/jobs", json={"kind": "stereo", "layout": "half"}, timeout=30
            ).json()
            began = time.perf_counter()
            ticket = accepted["upload"]
            with clip.open("rb") as handle:
                requests.post(ticket["url"], data=ticket["fields"], files={"file": handle}, timeout=60)
            while True:
                job = requests.get(f"{api}/jobs/{accepted['job_id']}", timeout=30).json()
                if job["status"] in {"completed", "failed", "cancelled"}:
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - began
    if job["status"] != "completed":
        raise RuntimeError(f"benchmark job failed: {job.get('error')}")
    total = int(job["progress"]["total"])
    return {"segments": total, "job_seconds": wall, "seconds_per_segment": wall / total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-media", action="store_true")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--segments", type=int, default=12)
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    rows: list[tuple[str, str, str]] = []
    if not args.skip_media:
        media = sub_benchmark("stereo_media.py")
        results["media"] = media
        rows.append(
            (
                "chunk + reassemble vs stream copy (120 s 1080p)",
                f"{media['ratio_vs_plain_copy']:.2f}x best, {media['ratio_vs_plain_copy_median']:.2f}x med",
                "≤ 2x",
            )
        )
    if not args.skip_engine:
        engine = sub_benchmark("stereo_engine.py")
        results["engine"] = engine
        for kind, target in (("warp", "≥ 30 fps"), ("end_to_end", "≥ 24 fps")):
            for name, row in engine[kind].items():
                rows.append((f"depthwarp 720p {kind} {name}", f"{row['fps']:.1f} fps", target))
    overhead = orchestration_overhead(args.segments)
    results["orchestration"] = overhead
    rows.append(
        (
            f"orchestration per segment ({overhead['segments']} segments)",
            f"{overhead['seconds_per_segment']:.2f} s (job {overhead['job_seconds']:.1f} s)",
            "",
        )
    )
    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'result':<40}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<40}  {target}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stereo.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
