"""A console-script entry point for the launcher tests: each mode shows one thing a run must own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> int:
    mode = sys.argv[1]
    if mode == "report":
        print(
            json.dumps(
                {
                    "argv": sys.argv,
                    "run_var": os.environ.get("RUN_VAR"),
                    "cwd": os.getcwd(),
                    "pid": os.getpid(),
                    "pgid": os.getpgid(0),
                    "sid": os.getsid(0),
                }
            )
        )
        print("to stderr", file=sys.stderr)
        return 3
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "exit-message":
        sys.exit("bye")
    if mode == "child":
        return subprocess.run([sys.executable, "-c", "import os; print(os.environ['RUN_VAR'])"]).returncode
    if mode == "clients":  # the model files the run reads to build the programs' clients
        import boto3
        from botocore.loaders import JSONFileLoader

        read: list[str] = []
        real = JSONFileLoader.load_file

        def load_file(self: JSONFileLoader, file_path: str) -> object:
            read.append(file_path)
            return real(self, file_path)

        JSONFileLoader.load_file = load_file  # type: ignore[method-assign]
        for service in ("s3", "dynamodb"):
            boto3.client(service, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        print(json.dumps(read))
        return 0
    if mode == "sleep":
        print("sleeping", flush=True)
        time.sleep(60)
    return 0
