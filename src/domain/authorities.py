"""The 152 local authorities of 2011 (reference data supplied by an adapter)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Authority:
    la_code: str
    ons_code: str
    name: str
    type: str
    region: str


class UnknownAuthority(LookupError):
    def __init__(self, given: str):
        self.given = given
        super().__init__(f"{given!r} is not one of the 152 local authorities of 2011 (give a 3-digit code or the name)")


@dataclass(frozen=True)
class Authorities:
    all: tuple[Authority, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(a.la_code for a in self.all)

    def resolve(self, code_or_name: str) -> Authority:
        """An authority by its 3-digit code or its name (case and spacing ignored)."""
        key = " ".join(str(code_or_name).split()).lower()
        for a in self.all:
            if key in (a.la_code, a.name.lower()):
                return a
        raise UnknownAuthority(code_or_name)
