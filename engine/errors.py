"""Domain errors.

The engine raises these; the server maps each to one canonical gRPC status in
one place (``servers/errors.py``).  Messages must never carry secrets (PINs,
tokens, key material).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: ``field`` is a dotted path (``subscriber.msisdn``)."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error the engine reports to a caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request itself is wrong; each bad field is listed."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations: list[FieldViolation] = list(violations or [])

    @classmethod
    def field(cls, field_path: str, description: str) -> "InvalidArgument":
        return cls(f"{field_path}: {description}", [FieldViolation(field_path, description)])


class NotFound(DomainError):
    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(f"{resource_type} {name!s} not found")
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(DomainError):
    def __init__(self, resource_type: str, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{resource_type} {name!s} already exists")
        self.resource_type = resource_type
        self.name = name


class FailedPrecondition(DomainError):
    """The request is well-formed but the object's state forbids it.

    ``reason`` is a stable UPPER_SNAKE code clients can branch on;
    ``subject`` names the object whose state is in the way.
    """

    def __init__(self, reason: str, message: str, subject: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.subject = subject


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    pass


@dataclass
class ErrorList:
    """Collects violations so that a caller gets every problem at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.violations.append(FieldViolation(field_path, description))

    def raise_if_any(self, message: str = "invalid request") -> None:
        if self.violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
            raise InvalidArgument(f"{message}: {summary}", self.violations)
