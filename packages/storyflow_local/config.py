"""Everything the local cloud can be told, in one place (template, parameters, clocks, commands)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"

# Template parameters the local cloud always passes (when the template declares them): the values
# that make the real template run on a laptop. A caller's `parameters` win over these.
LOCAL_PARAMETER_DEFAULTS: dict[str, str] = {
    "Stage": "local",
    "StereoEngine": "depthwarp",  # the CPU engine: no GPU, no weights
    "VideoEngine": "preview",  # the CPU engine: a real clip from the prompt or image, no weights
    "TtsEngine": "espeak",  # the CPU engine: espeak-ng, no weights
}


def project_root() -> Path:
    """The checkout holding template.yaml: $STORYFLOW_ROOT, else the nearest parent of cwd that has one."""
    env = os.environ.get("STORYFLOW_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parents[2]  # packages/storyflow_local/config.py


@dataclass
class LocalCloudConfig:
    """How to run the stack locally.

    `time_scale` is local seconds per AWS second for the clocks the local cloud owns (alarm periods,
    SQS visibility after a failed batch, EventBridge `rate()` schedules): 1/60 makes a 60 s alarm
    period last one local second.
    """

    template: Path = field(default_factory=lambda: project_root() / "template.yaml")
    stack_name: str = "storyflow-local"
    region: str = DEFAULT_REGION
    parameters: dict[str, str] = field(default_factory=dict)
    time_scale: float = 1.0 / 60.0
    alarm_tick_seconds: float = 0.25
    sqs_poll_seconds: float = 0.05
    # Lambda: cap on a function's Timeout (None = the template's value).
    lambda_timeout_cap_seconds: float | None = None
    # Packages every function imports afresh (its own module state, as in its own process).
    lambda_isolated_packages: tuple[str, ...] = ("storyflow",)
    # ECS: seconds between SIGTERM and SIGKILL on StopTask (ECS default 30 s).
    ecs_stop_timeout_seconds: float = 30.0
    # SageMaker: how long a model server may take to answer /ping with 200.
    sagemaker_ping_timeout_seconds: float = 120.0
    # Image repository name -> local argv (overrides the image-name -> console-script rule).
    image_commands: dict[str, list[str]] = field(default_factory=dict)
    # Extra environment for every local container process (ECS tasks, model servers), over the
    # template's: local-only switches such as fault injection in tests.
    container_environment: dict[str, str] = field(default_factory=dict)
    # Container programs that are console scripts of this interpreter run forked from a warm, pre-imported
    # process (`launcher`, `zygote`); False: every run is a new process.
    warm_programs: bool = True
    # Every function's init (its handler's import) runs in the background at deploy (`warm_start`), as
    # initialised execution environments; False: each function's first invocation imports it.
    preload_functions: bool = True
    # Directory searched first for container programs (default: the running interpreter's bin dir).
    bin_dir: Path | None = None
    state_file: Path | None = None
    write_state_file: bool = True

    @property
    def root(self) -> Path:
        return self.template.resolve().parent

    def stack_parameters(self, declared: dict[str, object]) -> dict[str, str]:
        """The one place parameter values come from: local defaults, then the caller's, for declared keys."""
        merged = {**LOCAL_PARAMETER_DEFAULTS, **self.parameters}
        return {key: str(value) for key, value in merged.items() if key in declared}

    def state_path(self) -> Path:
        return self.state_file or self.root / ".storyflow" / "local.json"
