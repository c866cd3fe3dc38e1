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
    if mode == "sleep":
        print("sleeping", flush=True)
        time.sleep(60)
    return 0
