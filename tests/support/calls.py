"""What a boto3 client sends, observed through botocore's own events."""

from __future__ import annotations

from typing import Any


def operations_sent(client: Any) -> list[str]:
    """The names of the operations `client` sends from now on (`PutObject`, `GetObject`...), in order."""
    sent: list[str] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}.*", lambda model, **_: sent.append(model.name))
    return sent
