"""What every adapter shares: the config, the emulator's address, clients, background work, patches."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow_local.clients import Clients
from storyflow_local.config import DEFAULT_ACCOUNT_ID, LocalCloudConfig
from storyflow_local.dispatch import Dispatcher
from storyflow_local.patching import Patches

if TYPE_CHECKING:
    from storyflow_local.deploy import Deployment
    from storyflow_local.launcher import Launcher


@dataclass
class LocalContext:
    config: LocalCloudConfig
    endpoint_url: str
    environment: dict[str, str]  # what a client of the emulator needs (endpoint, region, credentials)
    clients: Clients
    dispatcher: Dispatcher = field(default_factory=Dispatcher)
    patches: Patches = field(default_factory=Patches)
    account_id: str = DEFAULT_ACCOUNT_ID
    code_dirs: dict[str, Path] = field(default_factory=dict)  # S3 key of a code zip -> local directory
    image_programs: dict[str, list[str]] = field(default_factory=dict)  # ECR repository -> its ENTRYPOINT
    deployment: Deployment | None = None
    launcher: Launcher | None = None  # starts container programs (warm when it can)

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def scale(self) -> float:
        return self.config.time_scale

    def image_commands(self) -> dict[str, list[str]]:
        """Image repository → local argv prefix: the stack's Dockerfiles, then the config's overrides."""
        return {**self.image_programs, **self.config.image_commands}

    @property
    def bin_dir(self) -> Path:
        return self.config.bin_dir or Path(sys.executable).parent
