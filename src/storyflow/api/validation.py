"""Request checks and the error body: every 4xx names the field at fault and echoes none of its input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

from storyflow.errors import PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
_SOURCES = ("body", "path", "query", "header", "cookie")


@cache
def _kind_tags() -> frozenset[str]:
    """The job kinds (the body union's tags). Imported on first use: storyflow.models builds every request
    model, which the backend's `/start` function, using only these error helpers, never needs."""
    from storyflow.models import JobKind

    return frozenset(kind.value for kind in JobKind)


class ApiError(BaseModel, defer_build=True):
    """Every 4xx/5xx body: what went wrong, and the request field it concerns (when there is one)."""

    message: str
    field: str | None = None


class Health(BaseModel, defer_build=True):
    status: str = "ok"


def body_size(body: str | None, is_base64_encoded: bool = False) -> int:
    if not body:
        return 0
    if is_base64_encoded:
        return len(body) * 3 // 4
    return len(body.encode())


def check_body_size(body: str | None, is_base64_encoded: bool = False) -> None:
    size = body_size(body, is_base64_encoded)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"request body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes "
            "(media goes through the presigned upload, never the API)",
            field="body",
        )


def _field_path(loc: Sequence[Any]) -> str:
    """('body', 'video', 'num_videos') -> 'num_videos'; ('body', 'scenes', 0, 'x') -> 'scenes.0.x'."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if source == "body" and len(parts) > 1 and parts[0] in _kind_tags():
        parts.pop(0)  # the discriminated union's tag, not a field the client sent
    return ".".join(str(part) for part in parts) or (source or "request")


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """A readable message naming every failing field, and the first field (pydantic's input is not echoed)."""
    messages: list[str] = []
    fields: list[str] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            position = loc[1] if len(loc) > 1 else "?"
            field, message = "body", f"body: malformed JSON ({reason} at position {position})"
        elif kind in {"union_tag_invalid", "union_tag_not_found"}:
            expected = ", ".join(sorted(_kind_tags()))
            field = "kind"
            message = f"kind: must be one of {expected}" + (
                " (missing)"
                if kind == "union_tag_not_found"
                else f", got {error.get('ctx', {}).get('tag')!r}"
            )
        elif kind == "model_attributes_type" and _field_path(loc) == "body":
            field, message = "body", "body: must be a JSON object"
        else:
            field = _field_path(loc)
            message = f"{field}: {error.get('msg', 'invalid value')}"
        fields.append(field)
        messages.append(message)
    return "; ".join(messages) or "invalid request", (fields[0] if fields else None)
