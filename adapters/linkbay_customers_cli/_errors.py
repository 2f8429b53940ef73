"""The one error type the commands report: a single line, no traceback."""

from __future__ import annotations

__all__ = ("CommandError",)


class CommandError(Exception):
    """A failure the command reports as one line and a non-zero exit code.

    Args:
        message: What went wrong, phrased for the person at the terminal.
        exit_code: The process's exit code (1 unless told otherwise).
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
