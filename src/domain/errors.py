"""Domain errors. Each says which field, which value and why, so that every
adapter (CLI, HTTP, importer) can report it without knowing the rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    value: Any
    reason: str
    line: int | None = None  # the line of an input file, where there is one

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}={self.value!r}: {self.reason}"


class DomainError(Exception):
    """A business rule refused the request (an adapter maps it to a 4xx, never a 500)."""


class InvalidEvidence(DomainError):
    """One or more postings break a rule; nothing was written."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class ConflictingPosting(DomainError):
    """A client id was posted before with different content (HTTP 409)."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class UnknownTarget(DomainError):
    """A follow-up names a posting or provider the ledger does not hold."""


class UnsupportedYear(DomainError):
    """No framework settings are registered for the year asked for."""
