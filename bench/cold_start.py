"""Cold start of every Lambda handler against bare boto3, in fresh interpreters.

    .venv/bin/python bench/cold_start.py [--repeat 7] [--only api,task_manager]

Each function of template.yaml with a local CodeUri is loaded the way Lambda loads it: a fresh interpreter
(`-S -I`) whose sys.path is the function's folder (/var/task), then the layer's `src/` (/opt/python), the
standard library and site-packages; the developer-only packages that are not in the layer (moto, requests,
typer, ...: tests/template/test_layer.py's list) are made unimportable; the environment is the template's
(Globals + the function's variables, references as placeholder names) plus what the Lambda runtime sets
(LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, a sampled _X_AMZN_TRACE_ID, the X-Ray daemon address), and
POWERTOOLS_TRACE_DISABLED unset: tracing is on, as in production (`Tracing: Active`).

Timed in the child, after interpreter start-up (which Lambda's runtime pays the same for every function):
`import app` and the first `handler(event, context)` with a representative event. Every AWS endpoint is
this bench's refusing endpoint (AWS_ENDPOINT_URL): a local HTTP server that answers each request with a
400 ValidationException, which no SDK retries. So the first call does everything a real one does (clients
built, requests signed, sent and their answers parsed), one round trip per call as the baseline's, and
the table says how many requests each first call sent (an event the handler ignores would time an early
return: every handler's first call must reach AWS). Retry backoff sleeps are skipped (time.sleep is a
no-op in the child), as they are not cold-start work.
The baseline is the same for bare boto3: `import boto3; boto3.client("dynamodb")` and one call.

The machine may be loaded by other work, so runs are interleaved (a baseline run right before each handler
run) and the table reports medians and p90s; the ratio is the median of the paired ratios. One extra run per
target with `-X importtime` gives the top contributors (self time summed per top-level package, and the
heaviest modules the handler imports directly). Powertools features are measured the same way, each in a
fresh interpreter after `import boto3`, to say what each one costs on top of boto3.

Goal: every handler's import + first call <= 1.5x bare boto3's. Prints a table and writes
bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "packages")]

from storyflow_local import cfn_yaml  # noqa: E402
from tests.support.layer import BLOCKED, ISOLATE, function_environment  # noqa: E402

GOAL_RATIO = 1.5
RESULTS = ROOT / "bench" / "results" / "cold_start.json"
LAYER = ROOT / "src"
EVENTS = ROOT / "tests" / "events"
# The child: argv[1] = JSON {"path": [...], "blocked": [...], "mode": "handler"|"snippet", ...}.
CHILD = (
    ISOLATE
    + r"""
import time
# Every endpoint refuses at once; the storyflow clients retry (their Config says 5 attempts) with backoff.
# The backoff is not cold-start work: it is skipped and counted apart.
slept = [0.0]
def no_sleep(seconds):
    slept[0] += seconds
time.sleep = no_sleep
exec(spec.get("setup", ""))

class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 30_000

start = time.perf_counter()
if spec["mode"] == "handler":
    import app
    imported = time.perf_counter()
    try:
        app.handler(spec["event"], Context())
        outcome = "ok"
    except Exception as error:
        outcome = type(error).__name__
else:
    exec(spec["code"])
    imported = time.perf_counter()
    try:
        exec(spec.get("call", ""))
        outcome = "ok"
    except Exception as error:
        outcome = type(error).__name__
done = time.perf_counter()
answer = {"import_s": imported - start, "total_s": done - start, "outcome": outcome, "slept_s": slept[0]}
print(json.dumps(answer))
"""
)

BASELINE_CODE = "import boto3\nclient = boto3.client('dynamodb')"
BASELINE_CALL = "client.get_item(TableName='jobs', Key={'job_id': {'S': 'x'}})"

# What each Powertools feature (and the layer's own heavy modules) costs on top of an imported boto3.
FEATURES: dict[str, tuple[str, dict[str, str]]] = {
    "Logger()": ("from aws_lambda_powertools import Logger\nLogger()", {}),
    "Metrics()": ("from aws_lambda_powertools import Metrics\nMetrics(namespace='storyflow')", {}),
    "Tracer(), in Lambda (tracing on)": ("from aws_lambda_powertools import Tracer\nTracer()", {}),
    "Tracer(patch_modules=['botocore']), in Lambda": (
        "from aws_lambda_powertools import Tracer\nTracer(patch_modules=['botocore'])",
        {},
    ),
    "Tracer(), outside Lambda (X-Ray DefaultSampler)": (
        "from aws_lambda_powertools import Tracer\nTracer()",
        {"LAMBDA_TASK_ROOT": ""},
    ),
    "Tracer(disabled=True), outside Lambda": (
        "from aws_lambda_powertools import Tracer\nTracer(disabled=True)",
        {"LAMBDA_TASK_ROOT": ""},
    ),
    "import aws_xray_sdk.core, in Lambda": ("import aws_xray_sdk.core", {}),
    "APIGatewayRestResolver()": (
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\nAPIGatewayRestResolver()",
        {},
    ),
    "APIGatewayRestResolver(enable_validation=True)": (
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
        "APIGatewayRestResolver(enable_validation=True)",
        {},
    ),
    "batch.BatchProcessor": (
        "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType\n"
        "BatchProcessor(event_type=EventType.SQS)",
        {},
    ),
    "parser.event_parser": ("from aws_lambda_powertools.utilities.parser import event_parser", {}),
    "data_classes (SNSEvent)": ("from aws_lambda_powertools.utilities.data_classes import SNSEvent", {}),
    "import pydantic": ("import pydantic", {}),
    "import storyflow.models": ("import storyflow.models", {}),
    # What any handler here pays before its own code: Powertools' Logger and Tracer (tracing on, as in
    # production) and one pydantic model built and validated (every event and env model is one).
    "floor: Logger() + Tracer() + one pydantic model": (
        "from aws_lambda_powertools import Logger, Tracer\nLogger()\nTracer()\n"
        "from pydantic import BaseModel\nclass Event(BaseModel):\n    job_id: str\n"
        "Event.model_validate({'job_id': 'x'})",
        {},
    ),
}


class _Refuse(BaseHTTPRequestHandler):
    """Any request: read it, answer 400 ValidationException (not retryable), count it."""

    requests = 0
    BODY = json.dumps({"__type": "ValidationException", "message": "cold-start bench: refused"}).encode()

    def _answer(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-ErrorType", "ValidationException")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def refusing_endpoint() -> str:
    """Start the refusing endpoint on a free local port (a daemon thread); its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=server.serve_forever, name="refusing-endpoint", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


_ENDPOINT: list[str] = []


def _endpoint() -> str:
    """The refusing endpoint's URL, started on first use."""
    if not _ENDPOINT:
        _ENDPOINT.append(refusing_endpoint())
    return _ENDPOINT[0]


def _trace_header() -> str:
    return "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


# A representative first event per function, from tests/events (tests/unit/test_events.py runs each one
# through its handler, so these stay valid).
EVENT_FILES = {
    "api": "api_get_job.json",
    "task_manager": "task_start.json",
    "task_monitor": "alarm_task_ping.json",
    "inference_result": "sagemaker_async_success.json",
    "on_upload": "s3_object_created.json",
    "submit_inference": "submit_inference_segment.json",
    "job_status": "job_status_completed.json",
    "expire_uploads": "schedule_expire_uploads.json",
    "story_scenes": "story_scenes_given.json",
}


def _event(function: str, env: dict[str, str]) -> dict[str, Any]:
    """The function folder's first event; the intake's depends on the kind it takes (JOB_KIND)."""
    name = f"sqs_{env.get('JOB_KIND', 'tts')}_raw.json" if function == "intake" else EVENT_FILES[function]
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if function == "on_upload":  # the stack's own input bucket: an upload it must act on, not one it ignores
        event["detail"]["bucket"]["name"] = env["INPUT_BUCKET"]
    if function == "task_monitor":  # the stack's own TaskPing alarm, which it acts on
        for record in event["Records"]:
            message = json.loads(record["Sns"]["Message"])
            message["AlarmName"] = env["TASK_PING_ALARM_NAME"]
            record["Sns"]["Message"] = json.dumps(message)
    return event


def _base_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "_X_AMZN"))
    }
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=_endpoint(),
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        # What the Lambda runtime sets (python3.12, Tracing: Active).
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
        LAMBDA_RUNTIME_DIR="/var/runtime",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        _X_AMZN_TRACE_ID=_trace_header(),
        LAMBDA_TASK_ROOT=str(ROOT),
    )
    return env


def targets(only: set[str] | None) -> list[dict[str, Any]]:
    template = cfn_yaml.load(ROOT / "template.yaml")
    found = []
    for name, resource in sorted(template["Resources"].items()):
        props = resource.get("Properties") or {}
        if resource["Type"] != "AWS::Serverless::Function" or not isinstance(props.get("CodeUri"), str):
            continue
        code_dir = (ROOT / props["CodeUri"]).resolve()
        if only and code_dir.name not in only and name not in only:
            continue
        env = _base_env()
        env.update(function_environment(template, name))
        env.pop("POWERTOOLS_TRACE_DISABLED", None)
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
        env["AWS_LAMBDA_FUNCTION_NAME"] = name
        spec = {
            "mode": "handler",
            "path": [str(code_dir), str(LAYER), sysconfig.get_paths()["purelib"]],
            "blocked": BLOCKED,
            "event": _event(code_dir.name, env),
        }
        found.append({"name": name, "folder": code_dir.name, "spec": spec, "env": env, "cwd": str(code_dir)})
    return found


def baseline() -> dict[str, Any]:
    spec = {
        "mode": "snippet",
        "path": [str(ROOT / "bench"), sysconfig.get_paths()["purelib"]],
        "blocked": BLOCKED,
        "code": BASELINE_CODE,
        "call": BASELINE_CALL,
    }
    return {"name": "bare boto3", "spec": spec, "env": _base_env(), "cwd": str(ROOT / "bench")}


def feature(label: str, code: str, extra_env: dict[str, str]) -> dict[str, Any]:
    env = _base_env()
    env["POWERTOOLS_SERVICE_NAME"] = "bench"
    for key, value in extra_env.items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    spec = {
        "mode": "snippet",
        "path": [str(ROOT / "bench"), str(LAYER), sysconfig.get_paths()["purelib"]],
        "blocked": BLOCKED,
        "setup": "import boto3",
        "code": code,
    }
    return {"name": label, "spec": spec, "env": env, "cwd": str(ROOT / "bench")}


def run(target: dict[str, Any], *flags: str) -> tuple[dict[str, Any], str]:
    before = _Refuse.requests
    result = subprocess.run(
        [sys.executable, "-S", "-I", *flags, "-c", CHILD, json.dumps(target["spec"])],
        capture_output=True,
        text=True,
        env=target["env"],
        cwd=target["cwd"],
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{target['name']} failed:\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    answer["requests"] = _Refuse.requests - before
    return answer, result.stderr


def importtime(target: dict[str, Any], top: int = 6) -> dict[str, Any]:
    """One `-X importtime` run: self time per top-level package, and the heaviest direct imports."""
    _, stderr = run(target, "-X", "importtime")
    per_package: dict[str, int] = defaultdict(int)
    direct: list[tuple[int, str]] = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, indent, module = int(match[1]), int(match[2]), len(match[3]), match[4]
        per_package[module.split(".")[0]] += self_us
        if indent == (3 if target["spec"]["mode"] == "handler" else 1):
            direct.append((cumulative_us, module))
    packages = sorted(per_package.items(), key=lambda item: -item[1])[:top]
    return {
        "self_ms_by_package": {name: round(us / 1000, 1) for name, us in packages},
        "heaviest_imports_ms": {name: round(us / 1000, 1) for us, name in sorted(direct)[::-1][:top]},
    }


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _summary(totals: list[float], imports: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(1000 * statistics.median(totals), 1),
        "p90_ms": round(1000 * _p90(totals), 1),
        "import_median_ms": round(1000 * statistics.median(imports), 1),
    }


def measure(repeat: int, only: set[str] | None) -> dict[str, Any]:
    base = baseline()
    handlers = targets(only)
    features = [feature(label, code, env) for label, (code, env) in FEATURES.items()]
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    outcomes: dict[str, str] = {}
    sent: dict[str, int] = {}
    for round_ in range(repeat):
        order = handlers + features
        random.Random(round_).shuffle(order)
        for target in order:
            for current in (base, target):  # interleaved: a baseline right before every run
                answer, _ = run(current)
                key = current["name"]
                samples[key]["total"].append(answer["total_s"])
                samples[key]["import"].append(answer["import_s"])
                outcomes[key] = answer["outcome"]
                sent[key] = answer["requests"]
                if current is base:
                    base_total = answer["total_s"]
                else:
                    samples[key]["ratio"].append(answer["total_s"] / base_total)
        print(f"round {round_ + 1}/{repeat} done", file=sys.stderr)
    rows = []
    for target in [base, *handlers]:
        key = target["name"]
        row: dict[str, Any] = {"function": key, "folder": target.get("folder", "-")}
        row.update(_summary(samples[key]["total"], samples[key]["import"]))
        ratios = samples[key]["ratio"]
        row["ratio"] = round(statistics.median(ratios), 2) if ratios else 1.0
        row["first_call"] = outcomes[key]
        row["aws_requests"] = sent[key]
        row["importtime"] = importtime(target)
        rows.append(row)
    base_import = statistics.median(samples[base["name"]]["total"])
    feature_rows = []
    for target in features:
        key = target["name"]
        feature_rows.append(
            {
                "feature": key,
                "median_ms": round(1000 * statistics.median(samples[key]["total"]), 1),
                "p90_ms": round(1000 * _p90(samples[key]["total"]), 1),
                "of_bare_boto3": round(statistics.median(samples[key]["total"]) / base_import, 2),
            }
        )
    return {"handlers": rows, "features": feature_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per target (interleaved with baseline)")
    parser.add_argument("--only", default="", help="comma-separated function folders or logical ids")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name} or None
    result = measure(args.repeat, only)
    width = max(len(row["function"]) for row in result["handlers"])
    print(f"\nimport + first call, fresh interpreter, median of {args.repeat} (interleaved with bare boto3)")
    print(f"goal: every handler <= {GOAL_RATIO}x bare boto3 (import boto3; boto3.client(...); one call)\n")
    print(f"{'function':<{width}}  median ms  p90 ms  import ms  ratio  goal  AWS requests  first call")
    for row in result["handlers"]:
        ok = "-" if row["function"] == "bare boto3" else ("yes" if row["ratio"] <= GOAL_RATIO else "NO")
        print(
            f"{row['function']:<{width}}  {row['median_ms']:>9}  {row['p90_ms']:>6}"
            f"  {row['import_median_ms']:>9}  {row['ratio']:>5}  {ok:>4}  {row['aws_requests']:>12}"
            f"  {row['first_call']}"
        )
    print(
        "\ntop contributors (-X importtime, one run each; self ms per package | heaviest direct imports ms)"
    )
    for row in result["handlers"]:
        packages = ", ".join(f"{k} {v}" for k, v in row["importtime"]["self_ms_by_package"].items())
        heavy = ", ".join(f"{k} {v}" for k, v in row["importtime"]["heaviest_imports_ms"].items())
        print(f"{row['function']:<{width}}  {packages}\n{'':<{width}}  | {heavy}")
    print("\nPowertools features (and the layer's heavy modules), on top of an imported boto3")
    fwidth = max(len(row["feature"]) for row in result["features"])
    print(f"{'feature':<{fwidth}}  median ms  p90 ms  x bare boto3")
    for row in result["features"]:
        print(
            f"{row['feature']:<{fwidth}}  {row['median_ms']:>9}  {row['p90_ms']:>6}"
            f"  {row['of_bare_boto3']:>12}"
        )
    handlers = [row for row in result["handlers"] if row["function"] != "bare boto3"]
    meets = all(row["ratio"] <= GOAL_RATIO for row in handlers)
    print(f"\ngoal {'met' if meets else 'NOT met'}: worst ratio {max(row['ratio'] for row in handlers)}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    document = {
        "benchmark": "cold_start",
        "goal": f"every handler's import + first call <= {GOAL_RATIO}x bare boto3",
        "goal_met": meets,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in load]},
        **result,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
