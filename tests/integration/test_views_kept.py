"""What the views keep between questions (issue 5), on SQLite and PostgreSQL: an
authority's facts are read once and reused for every as-at date until an event
about that authority is projected; answers are kept per read-model position; the
embargo state is kept per position. Nothing kept may ever give a stale answer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.views import Views
from projections import queries
from tests.integration.test_assessment_scenarios import (
    block_b_good,
    providers_in_every_group,
    urn_of,
)

LA, OTHER = "886", "919"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The authorities whose facts were read from the read model, in order (one by one, or
    together: ADR 0026)."""
    seen: list[str] = []
    real, real_together = queries.authority_evidence, queries.authorities_evidence

    def counting(engine, la_code, known_at, year=None):
        seen.append(la_code)
        return real(engine, la_code, known_at, year=year)

    def counting_together(engine, la_codes, known_at, year=None, stop=None):
        read = real_together(engine, la_codes, known_at, year=year, stop=stop)
        seen.extend(read or ())
        return read

    monkeypatch.setattr("adapters.views.authority_evidence", counting)
    monkeypatch.setattr("adapters.views.authorities_evidence", counting_together)
    return seen


def primary(view: dict) -> dict:
    return next(g for g in view["layer1"]["groups"] if g["code"] == "primary_schools")


def test_a_new_as_at_date_reuses_the_facts_and_a_new_event_about_the_authority_reloads_them(ledger, clock, loads):
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1) + block_b_good(LA)
                  + providers_in_every_group(OTHER, "good", per_group=1))
    views = Views(ledger)
    first = views.proposal(LA, 2011, as_at=date(2011, 8, 31))
    views.proposal(LA, 2011, as_at=date(2011, 8, 30))
    views.profile(LA, as_at=date(2011, 7, 1))
    assert loads == [LA], "three as-at questions, one read of the facts"

    # An event about another authority moves the read model but not this authority's facts.
    clock.set(at("2011-05-01"))
    ledger.record([{"type": "withdrawal", "client_id": "wd:other", "actor": "t",
                    "target": f"insp:{urn_of(OTHER, 'primary_schools')}", "reason": "wrong school"}])
    assert views.proposal(LA, 2011, as_at=date(2011, 8, 29)) == {**first, "as_at": "2011-08-29",
                                                                   "known_at": clock.now.isoformat()}
    assert loads == [LA]

    # An event about this authority is seen at once.
    assert primary(views.profile(LA, as_at=date(2011, 8, 31)))["number_inspected"] == 1
    ledger.record([{"type": "withdrawal", "client_id": "wd:own", "actor": "t",
                    "target": f"insp:{urn_of(LA, 'primary_schools')}", "reason": "wrong school"}])
    assert primary(views.profile(LA, as_at=date(2011, 8, 31)))["number_inspected"] == 0
    assert loads == [LA, LA]


def test_facts_as_known_at_an_earlier_time_are_kept_apart_from_now(ledger, clock, loads):
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1) + block_b_good(LA))
    before = clock.advance(days=1)
    clock.set(at("2011-05-01"))
    ledger.record([{"type": "withdrawal", "client_id": "wd:1", "actor": "t",
                    "target": f"insp:{urn_of(LA, 'primary_schools')}", "reason": "wrong school"}])
    views = Views(ledger)
    assert primary(views.profile(LA, known_at=before))["number_inspected"] == 1
    assert primary(views.profile(LA))["number_inspected"] == 0
    assert primary(views.profile(LA, known_at=before, as_at=date(2011, 8, 1)))["number_inspected"] == 1
    assert primary(views.profile(LA, as_at=date(2011, 8, 1)))["number_inspected"] == 0
    assert loads == [LA, LA]


def test_the_clock_going_back_reads_the_facts_again(ledger, clock, loads):
    """Only a test's clock goes back; "now" then knows less, and the facts kept for a later
    "now" must not answer for it."""
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1))
    clock.set(at("2011-05-01"))
    ledger.record([{"type": "withdrawal", "client_id": "wd:1", "actor": "t",
                    "target": f"insp:{urn_of(LA, 'primary_schools')}", "reason": "wrong school"}])
    views = Views(ledger)
    assert primary(views.profile(LA))["number_inspected"] == 0
    clock.set(at("2011-04-15"))
    assert primary(views.profile(LA, as_at=date(2011, 8, 30)))["number_inspected"] == 1
    assert loads == [LA, LA]


def test_the_national_table_reads_each_authority_once_for_several_dates(ledger, clock, loads):
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1) + block_b_good(LA))
    views = Views(ledger)
    a = views.national(2011, as_at=date(2011, 8, 31))
    b = views.national(2011, as_at=date(2010, 1, 1))
    n = len(ledger.authorities.all)
    assert len(loads) == n, "152 authorities read once, not once per date"
    row = lambda t: next(r for r in t["authorities"] if r["la_code"] == LA)  # noqa: E731
    assert row(a)["proposal_label"] == "performs excellently"
    assert row(b)["proposal_label"] == "no evidence recorded"  # nothing had happened yet


def test_no_facts_are_kept_when_the_setting_is_zero(ledger, clock, loads):
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1))
    views = Views(ledger, cache_authorities=0)
    views.profile(LA, as_at=date(2011, 8, 31))
    views.profile(LA, as_at=date(2011, 8, 30))
    assert loads == [LA, LA]


def test_the_embargo_state_is_kept_per_position_and_moves_with_it(ledger, clock):
    clock.set(at("2011-09-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1))
    ledger.catch_up()
    views = Views(ledger)
    pinned = views.at(ledger.projector.position())
    assert not pinned.assessment_state(LA, 2011).draft_sent
    assert pinned.appealed_authorities() == frozenset()
    ledger.record([{"type": "draft_letter_sent", "client_id": "dl:1", "actor": "insp", "la_code": LA, "year": 2011,
                    "occurred_on": "2011-09-20", "grade": "well"}])
    ledger.catch_up()
    assert not pinned.assessment_state(LA, 2011).draft_sent, "pinned at the earlier position"
    assert views.at(ledger.projector.position()).assessment_state(LA, 2011).draft_sent
    assert views.assessment_state(LA, 2011).draft_sent


def test_warming_reads_every_authority_so_the_first_question_reads_nothing(ledger, clock, loads):
    import threading

    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1) + block_b_good(LA))
    views = Views(ledger)
    assert views.warm(2011) == len(ledger.authorities.all) == len(loads)
    assert views.profile(LA, as_at=date(2011, 8, 31))["layer1"]["groups"]
    assert len(loads) == len(ledger.authorities.all), "answered from the facts read while warming"

    stopped = threading.Event()
    stopped.set()
    assert Views(ledger).warm(2011, stop=stopped) == 0
    assert Views(ledger, cache_authorities=10).warm(2011) == 10, "never more than the cache keeps"


def test_the_cyclic_collector_is_paused_while_the_rules_run_and_resumed_after(ledger, clock, monkeypatch):
    import gc

    from domain.rules import cutoff as cutoff_module

    seen = []
    real = cutoff_module.decide_cutoff

    def watching(*a, **kw):
        seen.append(gc.isenabled())
        return real(*a, **kw)

    monkeypatch.setattr("adapters.views.decide_cutoff", watching)
    clock.set(at("2011-04-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=1))
    assert gc.isenabled()
    Views(ledger).profile(LA, as_at=date(2011, 8, 31))
    Views(ledger).national(2011, as_at=date(2011, 8, 31))
    assert seen and not any(seen), "paused during every run of the rules"
    assert gc.isenabled(), "and running again afterwards"


def test_an_unpinned_view_reads_the_read_models_position_once(ledger, clock, monkeypatch):
    """The CLI's views are not pinned to a position: each view reads it once and works out every
    answer it keeps at it (profile, assessment, judgement), rather than once for each."""
    ledger.record(providers_in_every_group(LA, "good") + block_b_good(LA))
    views = Views(ledger)
    reads = []
    real = ledger.projector.position
    monkeypatch.setattr(ledger.projector, "position", lambda: reads.append(1) or real())
    for as_at in (date(2011, 6, 1), date(2011, 7, 1)):
        for ask in (lambda d=as_at: views.profile(LA, year=2011, as_at=d),
                    lambda d=as_at: views.proposal(LA, 2011, as_at=d),
                    lambda d=as_at: views.exceptions(LA, 2011, as_at=d)):
            reads.clear()
            assert ask()["la_code"] == LA
            assert len(reads) == 1
    start, end = views.point(2011, date(2011, 6, 1)), views.point(2011, date(2011, 7, 1))
    reads.clear()
    assert views.diff(LA, 2011, start, end)["la_code"] == LA and len(reads) == 1
    # pinned views (an HTTP request's) read none
    reads.clear()
    views.at(real()).profile(LA, year=2011, as_at=date(2011, 8, 1))
    assert reads == []
