"""SAM → CloudFormation, offline: aws-sam-translator with a managed-policy loader that calls nothing."""

from __future__ import annotations

import os
from typing import Any


class _AnyManagedPolicy(dict[str, str]):
    """Every AWS managed policy name resolves to its conventional ARN (no IAM ListPolicies call)."""

    def get(self, key: str, default: str | None = None) -> str:  # type: ignore[override]
        return f"arn:aws:iam::aws:policy/{key}"

    def __bool__(self) -> bool:
        return True


class OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return _AnyManagedPolicy()


def sam_transform(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """Translate a SAM template (already packaged: S3 URIs only) into plain CloudFormation."""
    from samtranslator.metrics.method_decorator import MetricsMethodWrapperSingleton
    from samtranslator.translator.transform import transform

    if "AWS::Serverless" not in str(template.get("Transform", "")):
        return template
    values: dict[str, Any] = {**parameters, "AWS::Region": region}
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator reads the partition from the region
    try:
        result: dict[str, Any] = transform(template, values, OfflinePolicyLoader())
    finally:
        # The translator records timings with an offline (dummy) publisher; flush them now, or the next
        # translation's __del__ warns about "unpublished metrics" at an arbitrary point.
        MetricsMethodWrapperSingleton.get_instance().publish()
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    return result
