"""Local-cloud benchmark: `local up` to ready, a 3-Lambda chain, a 200-item Distributed Map through a Lambda.

    .venv/bin/python bench/local_cloud.py [--runs 3] [--items 200]

Prints a table and writes bench/results/local_cloud.json. "ready" is measured in a fresh process
(`python -m storyflow_local.cli up` on the project's template.yaml, until .storyflow-style state file
appears), so it includes interpreter start and imports, like a user typing `storyflow local up`.
The chain and the map run on the local-cloud fixture app (tests/integration/fixtures/app).
Targets on this machine: ready < 5 s, 200-item Map < 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "integration" / "fixtures" / "app"
RESULTS = ROOT / "bench" / "results" / "local_cloud.json"
TARGETS = {"ready_seconds": 5.0, "map_seconds": 5.0}


def measure_ready(template: Path, timeout: float = 120.0) -> dict[str, float]:
    """Wall and CPU seconds from spawning `local up` until its state file exists."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "local.json"
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "storyflow_local.cli",
                "up",
                "--template",
                str(template),
                "--quiet",
                "--state-file",
                str(state),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not state.exists():
                if process.poll() is not None:
                    errors = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"local up exited {process.returncode}: {errors[-2000:]}")
                if time.perf_counter() - started > timeout:
                    raise TimeoutError("local up did not get ready")
                time.sleep(0.02)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        if code != 0:
            raise RuntimeError(f"local up exited {code} on SIGTERM")
    return {"wall": wall, "cpu": cpu}


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return float("nan")


def run(cloud: Any, machine: str, payload: Any, timeout: float = 300.0) -> float:
    sfn = cloud.client("stepfunctions")
    started = time.perf_counter()
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        if time.perf_counter() - started > timeout:
            raise TimeoutError(machine)
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    if described["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"{machine}: {described['status']} {described.get('error')} {described.get('cause')}"
        )
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from storyflow_local import LocalCloud, LocalCloudConfig

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
    }
    rows: list[tuple[str, str, str]] = []

    template = args.template if args.template.is_file() else FIXTURE / "template.yaml"
    ready = [measure_ready(template) for _ in range(args.runs)]
    results["ready"] = {"template": str(template.relative_to(ROOT)), "runs": ready}
    ready_wall = statistics.median(r["wall"] for r in ready)
    ready_cpu = statistics.median(r["cpu"] for r in ready)
    target = f"< {TARGETS['ready_seconds']:.0f} s"
    rows.append(("local up → ready", f"{ready_wall:.2f} s (cpu {ready_cpu:.2f} s)", target))

    config = LocalCloudConfig(template=FIXTURE / "template.yaml", stack_name="bench", write_state_file=False)
    with LocalCloud(config) as cloud:
        results["fixture_ready_in_process"] = cloud.ready_seconds
        chain = [run(cloud, cloud.outputs["ChainStateMachineArn"], {}) for _ in range(args.runs)]
        bucket = cloud.outputs["DataBucketName"]
        cloud.client("s3").put_object(
            Bucket=bucket, Key="bench/items.json", Body=json.dumps([{"n": i} for i in range(args.items)])
        )
        payload = {"bucket": bucket, "key": "bench/items.json"}
        maps = [run(cloud, cloud.outputs["MapStateMachineArn"], payload) for _ in range(args.runs)]
    results["chain_seconds"] = chain
    results["map_seconds"] = maps
    results["map_items"] = args.items
    rows.append(("3-Lambda chain", f"{statistics.median(chain):.3f} s", ""))
    rows.append(
        (
            f"Distributed Map, {args.items} items → Lambda",
            f"{statistics.median(maps):.2f} s (first {maps[0]:.2f} s)",
            f"< {TARGETS['map_seconds']:.0f} s",
        )
    )
    results["summary"] = {
        "ready_seconds": ready_wall,
        "chain_seconds": statistics.median(chain),
        "map_seconds": statistics.median(maps),
    }

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':<28}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<28}  {target}")
    print(f"(load average {results['machine']['load_average'][0]:.1f} on {os.cpu_count()} CPUs)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
