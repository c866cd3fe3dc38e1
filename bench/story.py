"""End-to-end local story benchmark (issue 11): a 3-scene story from `POST /jobs` to completed, on the local
cloud (the real state machines, Lambdas and containers; CPU engines: espeak, the preview video engine).

    .venv/bin/python bench/story.py [--short-side 720] [--clip-frames 121] [--runs 1]

For each run it reports submit-to-completed seconds, the time spent in each stage of the story
(planning, scenes, composing; from polling the job every 0.1 s), the children's own run times (each
child's created_at to completed_at) and the orchestration overhead: the scenes stage minus its slowest
scene's children. Prints a table; writes bench/results/story.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "story.json"
sys.path.insert(0, str(ROOT / "packages"))
sys.path.insert(0, str(ROOT / "src"))

from storyflow_local import LocalCloud, LocalCloudConfig  # noqa: E402
from storyflow_local.demo import DEMO_STORY  # noqa: E402

FINISHED = {"completed", "failed", "cancelled"}


def run_story(api: str, timeout: float) -> dict[str, Any]:
    """Submit the demo's 3-scene story; poll it; the stages' durations and the children's run times."""
    began = time.perf_counter()
    answer = requests.post(f"{api}/jobs", json={"kind": "story", "scenes": DEMO_STORY}, timeout=30)
    answer.raise_for_status()
    job_id = answer.json()["job_id"]
    stages: dict[str, float] = {}
    last, since = None, began
    while True:
        job = requests.get(f"{api}/jobs/{job_id}", timeout=30).json()
        now = time.perf_counter()
        stage = job.get("stage") or job["status"]
        if stage != last:
            if last is not None:
                stages[last] = stages.get(last, 0.0) + now - since
            last, since = stage, now
        if job["status"] in FINISHED:
            break
        if now - began > timeout:
            raise TimeoutError(f"story {job_id} still {job['status']} after {timeout:.0f} s")
        time.sleep(0.1)
    total = time.perf_counter() - began
    if job["status"] != "completed":
        raise RuntimeError(f"story {job_id} {job['status']}: {job.get('error')}")
    children = [requests.get(f"{api}/jobs/{c['job_id']}", timeout=30).json() for c in job["children"]]
    runs = {c["job_id"]: c["completed_at"] - c["created_at"] for c in children}
    per_scene: dict[int, float] = {}
    for ref in job["children"]:
        per_scene[ref["scene"]] = max(per_scene.get(ref["scene"], 0.0), runs[ref["job_id"]])
    tts = [runs[c["job_id"]] for c in children if c["kind"] == "tts"]
    video = [runs[c["job_id"]] for c in children if c["kind"] == "video"]
    return {
        "job_id": job_id,
        "seconds": round(total, 2),
        "stages": {k: round(v, 2) for k, v in stages.items()},
        "tts_child_seconds": [round(s, 2) for s in tts],
        "video_child_seconds": [round(s, 2) for s in video],
        "slowest_scene_seconds": round(max(per_scene.values()), 2),
        "scenes_overhead_seconds": round(stages.get("scenes", 0.0) - max(per_scene.values()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-side", type=int, default=720, help="StoryShortSide (default 720)")
    parser.add_argument("--clip-frames", type=int, default=121, help="StoryClipFrames (default 121: 5 s)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    parameters = {"StoryShortSide": str(args.short_side), "StoryClipFrames": str(args.clip_frames)}
    config = LocalCloudConfig(template=ROOT / "template.yaml", parameters=parameters, write_state_file=False)
    with LocalCloud(config) as cloud:
        results = [run_story(cloud.api_url, args.timeout) for _ in range(args.runs)]
    best = min(results, key=lambda r: r["seconds"])
    print(
        f"\nlocal story: 3 scenes, short side {args.short_side}, {args.clip_frames} frames a clip, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'measure':40} {'seconds':>8}")
    rows = [
        ("submit -> completed (best)", best["seconds"]),
        ("submit -> completed (median)", statistics.median(r["seconds"] for r in results)),
        *((f"stage {name}", seconds) for name, seconds in best["stages"].items()),
        ("slowest scene (its tts or video child)", best["slowest_scene_seconds"]),
        ("scenes stage overhead (nesting, Map)", best["scenes_overhead_seconds"]),
        ("tts child (mean)", statistics.mean(best["tts_child_seconds"])),
        ("video child (mean)", statistics.mean(best["video_child_seconds"])),
    ]
    for name, seconds in rows:
        print(f"{name:40} {seconds:8.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "short_side": args.short_side,
                "clip_frames": args.clip_frames,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "load_average": round(os.getloadavg()[0], 2),
                "runs": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
