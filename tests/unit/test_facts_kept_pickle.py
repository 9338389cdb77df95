"""The facts and their timelines as kept in the store (ADR 0028, `projections.facts_kept`):
unpickled, they are equal facts whose timelines answer every as-at date as freshly built ones;
what the timelines cache for the last date asked is not kept; and a kept row may build only
the facts' own classes."""

from __future__ import annotations

import io
import os
import pickle
import random
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from test_rules_timelines import F, as_at_dates, evidence_known_at, random_log

from domain.rules.cutoff import decide_cutoff
from domain.rules.facts import AuthorityEvidence
from domain.rules.profile import build_profile_from
from domain.rules.timelines import Timelines, timelines_built, timelines_for
from projections import facts_kept


@pytest.mark.parametrize("seed", range(6))
def test_unpickled_timelines_answer_every_date_as_freshly_built_ones(seed):
    rnd = random.Random(f"kept:{seed}")
    events = random_log(rnd, n_providers=rnd.randint(6, 30))
    evidence = evidence_known_at(events, len(events))
    dates = as_at_dates(evidence, F, rnd, 60)
    built = timelines_for(evidence, F)
    for as_at in dates[:5]:  # dates asked before keeping: their cached states are not kept
        built.latest_counted(as_at), built.layer_one_by_group(as_at)
        build_profile_from(decide_cutoff(evidence, F, as_at), F, evidence.la_code)

    restored = facts_kept.loads(facts_kept.dumps(evidence, built), F)

    assert isinstance(restored, AuthorityEvidence) and restored == evidence
    timelines = timelines_built(restored, F)
    assert timelines is not None and timelines is not built and timelines.framework is F
    assert timelines_for(restored, F) is timelines  # used, not built again
    assert timelines.group_rows == {}
    assert all(c._last == (0, {}) for c in (timelines.latest_counted_changes, *timelines.layer_one_changes.values()))
    fresh = Timelines(evidence, F)
    for as_at in dates:
        assert timelines.latest_counted(as_at) == fresh.latest_counted(as_at)
        assert timelines.layer_one_by_group(as_at) == fresh.layer_one_by_group(as_at)
        assert build_profile_from(decide_cutoff(restored, F, as_at), F, restored.la_code).to_dict() == \
            build_profile_from(decide_cutoff(evidence, F, as_at), F, evidence.la_code).to_dict()
    # the timelines hold the restored facts' own objects, not copies (one pickle for both)
    facts_ids = {id(i) for i in restored.provider_inspections}
    counted = [i for state in (timelines.latest_counted(d) for d in dates) for i in state.values()]
    assert counted
    assert all(id(i) in facts_ids or i.compliance_check for i in counted)  # ¶19's copies aside


def test_facts_without_timelines_are_kept_without_them():
    evidence = evidence_known_at(random_log(random.Random("kept:bare"), 8), 30)
    restored = facts_kept.loads(facts_kept.dumps(evidence, None), F)
    assert restored == evidence and timelines_built(restored, F) is None


def test_timelines_built_under_another_framework_are_not_taken_for_this_one():
    evidence = evidence_known_at(random_log(random.Random("kept:other"), 8), 30)
    other = replace(F, care_exception=None)
    timelines_for(evidence, other)
    assert timelines_built(evidence, F) is None and timelines_built(evidence, other) is not None


class _Calls:
    """Pickles as a call of os.system: what a hostile row would hold."""

    def __reduce__(self):
        return os.system, ("true",)


class _Builds:
    """Pickles as a call of an allowed class with hostile arguments."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return Fraction, self.args


@pytest.mark.parametrize("payload", [
    pickle.dumps(os.getcwd),
    pickle.dumps(((), pickle.loads)),
    pickle.dumps(((), _Calls())),
])
def test_a_kept_row_may_build_only_the_facts_own_classes(payload):
    with pytest.raises(pickle.UnpicklingError, match="may not name"):
        facts_kept.loads(payload, F)


@pytest.mark.parametrize("args", [("1e1000000000",), ("1" * 61,), (2**300, 3), (1, 0), (1.5,), ("1/2", 3)])
def test_a_kept_row_may_not_make_a_fraction_that_takes_long_to_build(args):
    """Fraction("1e<N>") computes 10**N, and huge integers a long gcd: a small hostile row
    could hold a process for hours. Only what pickling a real figure gives is built."""
    payload = pickle.dumps(((), _Builds(*args)))
    started = time.perf_counter()
    with pytest.raises(pickle.UnpicklingError, match="may not build Fraction"):
        facts_kept.loads(payload, F)
    assert time.perf_counter() - started < 1


class _ByName:
    """Pickles as `getattr(obj, name)`: how Python 3.11.2 pickles an enum member (3.11.7 pickles
    `cls(value)`), so that rows written by either release are read by the other."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


def test_an_enum_member_pickled_by_name_is_read_whichever_python_wrote_it():
    from domain.vocabulary import AssessmentGrade, Grade

    for member in (Grade.GOOD, Grade.INADEQUATE, AssessmentGrade.WELL):
        payload = pickle.dumps(_ByName(type(member), member.name), protocol=5)
        assert facts_kept._Unpickler(io.BytesIO(payload)).load() is member
        assert facts_kept._Unpickler(io.BytesIO(pickle.dumps(member, protocol=5))).load() is member


@pytest.mark.parametrize("target", [("date", "today"), ("fact", "__init__"), ("Grade", "__class__"),
                                    ("Grade", "NOT_A_MEMBER"), ("Grade", 1)])
def test_getattr_in_a_kept_row_builds_only_an_enum_member(target):
    """Each of these names a class the row may name, so only `getattr` itself refuses it."""
    from datetime import date

    from domain.rules.facts import ProviderInspectionFact
    from domain.vocabulary import Grade

    obj, name = target
    obj = {"date": date, "fact": ProviderInspectionFact, "Grade": Grade}[obj]
    payload = pickle.dumps(((), _ByName(obj, name)))
    with pytest.raises(pickle.UnpicklingError, match="may not build getattr"):
        facts_kept.loads(payload, F)


class _WithState:
    """Pickles as a call, then pickle's BUILD with `state`, applied to what the call returned."""

    def __init__(self, call, args, state):
        self.call, self.args, self.state = call, args, state

    def __reduce__(self):
        return self.call, self.args, self.state


@pytest.mark.parametrize("form", ["by value", "by name"])
def test_a_kept_row_may_not_change_an_enum_member(form):
    """An enum member is shared by the whole process: a row that follows it with state (which
    BUILD would write into it) is refused, and the member is as it was."""
    from domain.vocabulary import Grade

    call, args = (Grade, ("good",)) if form == "by value" else (getattr, (Grade, "GOOD"))
    for state in ({"_value_": "outstanding"}, (None, {"_value_": "outstanding"})):
        payload = pickle.dumps(((), _WithState(call, args, state)), protocol=5)
        with pytest.raises(pickle.UnpicklingError, match="may not give state"):
            facts_kept.loads(payload, F)
        assert Grade.GOOD.value == "good" and Grade("good") is Grade.GOOD


def _build_on(module: str, name: str, attribute: str, value: str) -> bytes:
    """A pickle (protocol 0 opcodes) that names a class or function, then BUILDs it with the
    slot state {attribute: value}, which sets the attribute on the shared object itself."""
    return (f"c{module}\n{name}\n(N}}S'{attribute}'\nS'{value}'\nstb.").encode()


@pytest.mark.parametrize(("module", "name", "attribute"), [
    ("domain.rules.facts", "ProviderInspectionFact", "counts_from"),
    ("domain.rules.facts", "ProviderInspectionFact", "__repr__"),
    ("domain.rules.timelines", "Timelines", "marker"),
    ("fractions", "Fraction", "marker"),
])
def test_a_kept_row_may_not_change_a_class_or_function_it_names(module, name, attribute):
    found = facts_kept._ALLOWED[(module, name)]
    before = dict(vars(found))
    with pytest.raises(pickle.UnpicklingError, match="may not change a class or function"):
        facts_kept._Unpickler(io.BytesIO(_build_on(module, name, attribute, "changed"))).load()
    assert dict(vars(found)) == before  # put back as it was


def test_a_figure_is_kept_exactly():
    for f in (Fraction(2, 3), Fraction(-7, 100), Fraction(80), Fraction(2**200 + 1, 3**100)):
        assert facts_kept._Unpickler(io.BytesIO(pickle.dumps(f, protocol=5))).load() == f


def test_the_code_digest_changes_with_the_code_and_is_the_same_in_another_process(tmp_path):
    extra = tmp_path / "keys.py"
    extra.write_text("KEYS = 1\n")
    first = facts_kept.code_digest(extra)
    assert facts_kept.code_digest(extra) == first and len(first) == 64
    extra.write_text("KEYS = 2\n")
    assert facts_kept.code_digest(extra) != first
    assert facts_kept.code_digest() == facts_kept.CODE != first
    # another interpreter, another hash seed: the same digest
    src = Path(facts_kept.__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", "from projections.facts_kept import CODE; print(CODE)"],
                         env={**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "12345"},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == facts_kept.CODE


def test_no_digest_and_so_nothing_kept_where_the_sources_cannot_be_read(tmp_path):
    """A deployment whose sources are not files (a zip, a frozen application): no digest, so
    `store` and `load` do nothing, rather than a digest that would not follow the code."""
    assert facts_kept.code_digest(tmp_path / "app.zip" / "adapters" / "views.py") is None
    assert facts_kept.store(None, 2011, [object()], code=None) == facts_kept.Stored()  # type: ignore[arg-type]
    assert facts_kept.load(None, 2011, {"886": 1}, None, F, code=None) == {}  # type: ignore[arg-type]
