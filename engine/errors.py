"""Domain errors.

The engine raises these; the server maps each to one canonical gRPC status in
one place (``servers/errors.py``).  Messages must never carry secrets (PINs,
tokens, key material).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# An error echoes what the caller sent (an id, a path, a value) so that the caller sees what was wrong, but
# never all of it: a 16 KB id must give NOT_FOUND, not a reply too large for the transport.
MAX_ECHO = 120          # characters of one echoed value
MAX_MESSAGE = 1000      # characters of one message or field description


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(value: object, limit: int = MAX_ECHO) -> str:
    """A caller's value as an error message echoes it: its repr for text (quotes make blanks visible), cut short."""
    text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    return clip(text, limit)


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: ``field`` is a dotted path (``subscriber.msisdn``); both are kept short."""

    field: str
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", clip(self.field, MAX_ECHO * 2))
        object.__setattr__(self, "description", clip(self.description))


class DomainError(Exception):
    """Base of every error the engine reports to a caller; the message is kept short (:func:`clip`)."""

    def __init__(self, message: str) -> None:
        message = clip(message)
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # the subclasses take other arguments than the message Exception.args holds, so the default pickling (which
        # calls cls(*args)) cannot rebuild them: an error raised in a worker process must reach its parent as itself
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(cls: type[DomainError], args: tuple[object, ...], state: dict[str, object]) -> DomainError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


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
        name = clip(str(name), MAX_ECHO)
        super().__init__(f"{resource_type} {name} not found")
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(DomainError):
    def __init__(self, resource_type: str, name: str, message: str | None = None) -> None:
        name = clip(str(name), MAX_ECHO)
        super().__init__(message or f"{resource_type} {name} already exists")
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
        self.subject = clip(subject, MAX_ECHO)


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    """A limit of ours (a size, a count, a time budget) ran out; the message names the setting."""


class Cancelled(DomainError):
    """The caller went away (or the server is shutting down): the work stopped and changed nothing."""


class DeadlineExceeded(DomainError):
    """The caller's deadline passed before the work was done: it stopped and changed nothing."""


class Unavailable(DomainError):
    """Something the call needs (the database) cannot be reached now; the caller may retry later."""


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
