"""Test-side writes the product leaves to other processes (the media container sets a job's progress
total; the Lambda layer only ever counts progress up)."""

from __future__ import annotations

import boto3


def set_progress_total(table: str, job_id: str, total: int) -> None:
    boto3.resource("dynamodb").Table(table).update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET progress.#total = :total",
        ConditionExpression="attribute_exists(job_id)",
        ExpressionAttributeNames={"#total": "total"},
        ExpressionAttributeValues={":total": total},
    )
