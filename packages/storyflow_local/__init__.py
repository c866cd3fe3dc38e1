"""The local cloud: template.yaml deployed into an embedded moto, real handlers, machines and containers.

from storyflow_local import LocalCloud, LocalCloudConfig
with LocalCloud(LocalCloudConfig(template=path)) as cloud:
    cloud.client("stepfunctions").start_execution(...)
"""

from storyflow_local.cloud import LocalCloud, LocalCloudError
from storyflow_local.config import LocalCloudConfig

__all__ = ["LocalCloud", "LocalCloudConfig", "LocalCloudError"]
