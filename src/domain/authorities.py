"""The 152 local authorities of 2011 (reference data supplied by an adapter)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


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

    @cached_property
    def codes(self) -> frozenset[str]:
        return frozenset(a.la_code for a in self.all)

    @cached_property
    def _by_key(self) -> dict[str, Authority]:
        """Each authority under its code and its lower-case name, the first listed winning as a
        scan in order would (asked on every view: a dictionary, not a scan of 152 names)."""
        by_key: dict[str, Authority] = {}
        for a in self.all:
            by_key.setdefault(a.la_code, a)
            by_key.setdefault(a.name.lower(), a)
        return by_key

    def resolve(self, code_or_name: str) -> Authority:
        """An authority by its 3-digit code or its name (case and spacing ignored)."""
        key = " ".join(str(code_or_name).split()).lower()
        found = self._by_key.get(key)
        if found is None:
            raise UnknownAuthority(code_or_name)
        return found
