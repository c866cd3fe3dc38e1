"""Typed errors. Handlers map them to HTTP codes or Step Functions error names; nobody matches strings."""

from __future__ import annotations


class StoryflowError(Exception):
    """Base class. `status_code` is what the API answers when this escapes a route."""

    status_code = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(StoryflowError):
    status_code = 400


class NotFound(StoryflowError):
    status_code = 404


class Conflict(StoryflowError):
    """The item exists but is not in a state that allows the change (a conditional write failed)."""

    status_code = 409


class PayloadTooLarge(StoryflowError):
    status_code = 413


class WorkflowNotDeployed(StoryflowError):
    """The stack has no state machine for this kind of job."""

    status_code = 400


class TransientError(StoryflowError):
    """Worth retrying: Step Functions `Retry` matches this class name."""

    status_code = 503


class JobNotActive(StoryflowError):
    """The job is no longer queued or running (cancelled, failed, completed, or unknown): its work is not
    done. Not retried by any state machine."""

    status_code = 409
