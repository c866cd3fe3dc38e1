"""The local cloud: template.yaml deployed into an embedded moto, real handlers, machines and containers.

from storyflow.local import LocalCloud, LocalCloudConfig
with LocalCloud(LocalCloudConfig(template=path)) as cloud:
    cloud.client("stepfunctions").start_execution(...)
"""

from storyflow.local.cloud import LocalCloud, LocalCloudError
from storyflow.local.config import LocalCloudConfig

__all__ = ["LocalCloud", "LocalCloudConfig", "LocalCloudError"]
