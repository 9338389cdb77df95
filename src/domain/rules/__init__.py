"""The 2011 assessment engine: pure rules over facts already filtered by known_at.

- `facts`: the input dataclasses, in domain words.
- `cutoff`: which evidence counts on a business date (¶19-20, ¶28-29).
- `profile`: the performance profile, layers 1-4 (¶13-16, ¶27, ¶31-33, ¶60-61, Annex A-B).
- `assessment`: the Annex E proposal, its caps, the ¶58 considerations and the trace.
"""

from domain.rules.assessment import Proposal, propose_grade
from domain.rules.cutoff import CutoffResult, decide_cutoff
from domain.rules.profile import Profile, build_profile

__all__ = [
    "CutoffResult",
    "Profile",
    "Proposal",
    "build_profile",
    "decide_cutoff",
    "propose_grade",
]
