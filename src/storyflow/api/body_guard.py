"""Checks a request body's bytes before the resolver parses them, so no client bytes can reach a 500 or
be misread: the body must be UTF-8 JSON (no UTF-16, no invalid bytes), a single object (Powertools would
take the first element of an array), and nested at most MAX_DEPTH deep (deeper JSON is a RecursionError).

Malformed JSON is left to the resolver, whose validator names the position; everything refused here is a
400 on `body`, in the API's `{message, field}` shape.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from http import HTTPStatus
from typing import Any

from storyflow.api.validation import ApiError
from storyflow.errors import BadRequest
from storyflow.observability import logger

MAX_DEPTH = 32
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def check_body(body: str | None, is_base64_encoded: bool) -> None:
    """Raise BadRequest(field="body") for bytes the API refuses; return quietly for anything else."""
    if not body:
        return
    raw = _decode_base64(body) if is_base64_encoded else body.encode("utf-8", "surrogatepass")
    if raw.startswith(_UTF16_BOMS) or (len(raw) > 1 and (raw[0] == 0 or raw[1] == 0)):
        raise BadRequest("body: must be UTF-8 JSON (this looks like UTF-16 or UTF-32)", field="body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(
            f"body: not valid UTF-8 (byte 0x{raw[error.start]:02x} at position {error.start})", field="body"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequest(f"body: JSON nested deeper than {MAX_DEPTH} levels", field="body") from None
    except ValueError:
        return  # malformed: the resolver's validator names where
    if not isinstance(value, dict):
        raise BadRequest(f"body: must be a JSON object, got a JSON {_json_type(value)}", field="body")
    if _depth(value) > MAX_DEPTH:
        raise BadRequest(f"body: JSON nested deeper than {MAX_DEPTH} levels", field="body")


def refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """The API Gateway proxy response refusing this event's body, or None when the body may be resolved."""
    try:
        check_body(event.get("body"), bool(event.get("isBase64Encoded")))
    except BadRequest as error:
        logger.info("request refused", extra={"error": "BadRequest", "field": error.field})
        return {
            "statusCode": HTTPStatus.BAD_REQUEST,
            "headers": {"Content-Type": "application/json"},
            "body": ApiError(message=error.message, field=error.field).model_dump_json(),
            "isBase64Encoded": False,
        }
    return None


def _decode_base64(body: str) -> bytes:
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("body: not valid base64", field="body") from None


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a scalar is 0, `{}` is 1)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
