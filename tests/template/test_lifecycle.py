"""Nothing is left behind unintentionally: every object the stack writes is a kept final or expires, by tag
(intermediates) or by prefix (uploads, the SageMaker async endpoints' own output and failure files)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.template import load_template

INTERMEDIATE_TAG = {"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}


def rules(bucket: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = load_template()["Resources"][bucket]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    return [r for r in found if r.get("Status") == "Enabled"]


def expiring_prefixes(bucket: str) -> dict[str, Any]:
    """{prefix: ExpirationInDays} of the bucket's untagged prefix rules."""
    return {
        r["Prefix"]: r["ExpirationInDays"] for r in rules(bucket) if "Prefix" in r and "TagFilters" not in r
    }


@pytest.mark.parametrize("bucket", ["InputBucket", "OutputBucket"])
def test_tagged_intermediates_expire_after_a_day(bucket: str) -> None:
    tagged = [r for r in rules(bucket) if r.get("TagFilters") == [INTERMEDIATE_TAG]]
    assert [r["ExpirationInDays"] for r in tagged] == [1]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules(bucket))


def test_uploads_under_input_expire_after_source_retention_days() -> None:
    # Sources and stray uploads that match no job: kept SourceRetentionDays, a template parameter
    parameter = load_template()["Parameters"]["SourceRetentionDays"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 1 and parameter["Default"] >= 1
    assert expiring_prefixes("InputBucket") == {"input/": {"Ref": "SourceRetentionDays"}}


def test_the_async_endpoints_output_and_failure_files_expire() -> None:
    # SageMaker writes them itself (untagged): a prefix rule covers every OutputConfig path
    prefixes = expiring_prefixes("OutputBucket")
    configs = [
        r["Properties"]["AsyncInferenceConfig"]["OutputConfig"]
        for r in load_template()["Resources"].values()
        if r["Type"] == "AWS::SageMaker::EndpointConfig" and "AsyncInferenceConfig" in r["Properties"]
    ]
    assert configs, "no async endpoint config"
    for config in configs:
        for path in (config["S3OutputPath"], config["S3FailurePath"]):
            (template,) = path["Fn::Sub"] if isinstance(path["Fn::Sub"], list) else [path["Fn::Sub"]]
            assert template.startswith("s3://${OutputBucket}/"), template
            key = template.removeprefix("s3://${OutputBucket}/")
            assert any(key.startswith(prefix) and days == 1 for prefix, days in prefixes.items()), key
