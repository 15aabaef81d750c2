"""What can go wrong while mediating, as values and exceptions with stable codes.

Codes are stable (tests and operators branch on them); messages are for people.
Record-level problems reject one record; file-level problems refuse the whole
file before anything is stored.
"""

from __future__ import annotations


class FieldError(ValueError):
    """One record cannot be converted: ``field`` names the CDR field, ``code`` is stable."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message


class ConversionError(ValueError):
    """Raised by a conversion; the mapper turns it into a :class:`FieldError` naming the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FileLevelError(Exception):
    """The whole file is refused (wrong layout, wrong delimiter, header mismatch, missing columns).

    ``line`` is 1-based; ``byte_offset`` is where the offending line starts.
    """

    def __init__(self, code: str, message: str, line: int = 0, byte_offset: int = 0) -> None:
        super().__init__(f"line {line}: {code}: {message}")
        self.code = code
        self.message = message
        self.line = line
        self.byte_offset = byte_offset


class ReconciliationError(AssertionError):
    """The counts of a file do not add up: a bug, never an input problem."""


class LayoutError(Exception):
    """A layout (or the tenants file) failed validation; ``problems`` lists every finding."""

    def __init__(self, problems: list) -> None:  # list[engine.yamlio.Problem]
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
