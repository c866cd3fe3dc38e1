"""The CLI's failures: one line for the user, an exit code, no traceback."""

from __future__ import annotations


class CliError(Exception):
    """A failure worth one line to the user (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiFailure(CliError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"API answered {status}{where}: {message}")
        self.status = status
        self.field = field
