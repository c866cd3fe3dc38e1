"""A job's intermediates, tagged `storyflow-lifecycle=expire-intermediate` so the buckets' lifecycle rule
expires them (finals are never tagged).

A completed job's reassemble step tags what it read; a cancelled job never gets there, so the cancel path
tags what exists (`tag_job`), and an inference that finishes after the cancel tags its own late output
(`tag_uri`, from the result function). Both are plain S3 calls, the same on AWS as locally.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from storyflow import aws, keys
from storyflow.observability import logger
from storyflow.settings import Settings


def prefixes(job_id: str, settings: Settings) -> list[tuple[str, str]]:
    """(bucket, prefix) of every intermediate a job can leave: its input segments, manifest and audio copy,
    its inferred segments, and its inference requests."""
    job_id = keys.check_job_id(job_id)
    output = settings.require("output_bucket")
    return [
        (settings.require("input_bucket"), f"segments/{job_id}/"),
        (output, f"{keys.job_prefix(job_id)}segments/"),
        (output, f"inference/requests/{job_id}-"),
    ]


def tag(bucket: str, key: str) -> bool:
    """Tag one object (its tag set becomes just the lifecycle tag: intermediates carry no other); False
    when it does not exist."""
    try:
        aws.client("s3").put_object_tagging(
            Bucket=bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": keys.LIFECYCLE_TAG_KEY, "Value": keys.LIFECYCLE_TAG_INTERMEDIATE}]},
        )
    except ClientError as error:
        if aws.error_code(error) in aws.OBJECT_MISSING:
            return False
        raise
    return True


def tag_uri(uri: str) -> bool:
    location = keys.S3Location.parse(uri)
    return tag(location.bucket, location.key)


def tag_job(job_id: str, settings: Settings) -> int:
    """Tag every intermediate of the job that exists now; returns how many objects were tagged."""
    s3 = aws.client("s3")
    tagged = 0
    for bucket, prefix in prefixes(job_id, settings):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                tagged += tag(bucket, str(item["Key"]))
    logger.info("intermediates tagged for expiry", extra={"job_id": job_id, "objects": tagged})
    return tagged
