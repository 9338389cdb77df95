"""The state of an authority's assessment that the embargo depends on (¶12, ¶74-81)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class AssessmentState:
    """What the embargo depends on, from the steps recorded so far (as known now)."""

    la_code: str
    year: int
    draft_sent: bool = False
    under_appeal: bool = False
    published: bool = False

    @classmethod
    def of(cls, la_code: str, year: int, step_kinds: Iterable[str]) -> AssessmentState:
        kinds = set(step_kinds)
        return cls(la_code, year, "draft_letter_sent" in kinds, "appeal_lodged" in kinds,
                   "assessment_published" in kinds)
