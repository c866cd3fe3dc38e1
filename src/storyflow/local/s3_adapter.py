"""S3 bucket notifications → Lambda, delivered asynchronously (moto invokes inside the PutObject call)."""

from __future__ import annotations

from typing import Any

from storyflow.local.context import LocalContext
from storyflow.local.lambda_adapter import LambdaAdapter


class S3Adapter:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas

    def install(self) -> None:
        import moto.s3.notifications as notifications

        adapter = self

        def invoke_lambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            adapter.lambdas.invoke_arn_async(fn_arn, event_body)

        self.ctx.patches.set(notifications, "_invoke_awslambda", invoke_lambda)
