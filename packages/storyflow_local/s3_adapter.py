"""S3 bucket notifications: delivered to Lambda asynchronously (moto invokes inside the PutObject call)
and shaped like AWS's (keys URL-encoded with `/` kept, userIdentity/requestParameters/responseElements,
sequencer and versionId present). Browser-based POST uploads are checked against their signed policy
first (`s3_post_policy`)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote_plus

from storyflow_local import s3_post_policy
from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter


class S3Adapter:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas

    def install(self) -> None:
        import moto.s3.notifications as notifications

        adapter = self
        original_event = notifications._get_s3_event

        def invoke_lambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            adapter.lambdas.invoke_arn_async(fn_arn, event_body)

        def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            event: dict[str, Any] = original_event(event_name, bucket, key, notification_id)
            for record in event["Records"]:
                record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
                record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
                record.setdefault(
                    "responseElements",
                    {"x-amz-request-id": secrets.token_hex(8).upper(), "x-amz-id-2": secrets.token_hex(16)},
                )
                obj = record["s3"]["object"]
                obj["key"] = quote_plus(key.name, safe="/")
                obj.setdefault("sequencer", secrets.token_hex(8).upper())
                version = getattr(key, "version_id", None)
                if version and version != "null":
                    obj.setdefault("versionId", version)
            return event

        self.ctx.patches.set(notifications, "_invoke_awslambda", invoke_lambda)
        self.ctx.patches.set(notifications, "_get_s3_event", s3_event)
        s3_post_policy.install(self.ctx.patches)  # presigned POST conditions, enforced as S3 does
