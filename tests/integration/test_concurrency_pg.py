"""Two writers and two projectors on PostgreSQL at once: no duplicate, no lost event,
conflicts reported, the read model equal to a rebuild from the log."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from store_helpers import empty_postgres

from adapters.database import make_engine
from adapters.ledger import Ledger
from domain.errors import ConflictingPosting
from domain.model import assessment_id
from domain.postings import KINDS
from projections.projector import Projector, digest
from projections.tables import event_log, evidence

pytestmark = pytest.mark.postgres

T0 = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)


def post(type_: str, client_id: str, **fields):
    body = {**KINDS[type_].example, **fields}
    return {"type": type_, "client_id": client_id, "actor": "writer",
            **{k: v for k, v in body.items() if v is not None}}


def clock() -> datetime:
    return T0


@pytest.fixture
def two_ledgers(pg_url):
    a, b = Ledger(pg_url, clock=clock), Ledger(pg_url, clock=clock)
    yield a, b
    a.close()
    b.close()


def together(*jobs):
    """Run the jobs in threads released at the same moment; return results or exceptions."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        try:
            return job()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            return e

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def events_per_aggregate(ledger: Ledger) -> Counter:
    return Counter((n.originator_id, n.originator_version) for n in ledger.iter_notifications())


def test_two_writers_posting_overlapping_batches(two_ledgers, pg_url, tmp_path):
    a, b = two_ledgers
    a.record([post("provider_registered", "reg-1")])
    rounds = 6
    shared = [[post("provider_inspection", f"shared-{r}-{i}", occurred_on=f"2011-0{1 + i}-1{r}",
                    published_on="2011-09-30") for i in range(3)] for r in range(rounds)]
    results: dict[str, list] = {"a": [], "b": []}

    def writer(name, led):
        def job():
            for r in range(rounds):
                own = [post("unannounced_inspection", f"{name}-{r}", occurred_on=f"2011-0{1 + r}-02",
                            published_on=None),
                       post("assessment_proposed", f"{name}-step-{r}", occurred_on=f"2011-09-0{1 + r}")]
                batch = shared[r] + own if name == "a" else own + shared[r][::-1]
                results[name].append(led.record(batch))
            return True
        return job

    assert together(writer("a", a), writer("b", b)) == [True, True]

    # every shared posting recorded by exactly one writer, reported already recorded by the other
    status = Counter()
    for name in "ab":
        for res in results[name]:
            for o in res.outcomes:
                if o.client_id.startswith("shared-"):
                    status[(o.client_id, o.status)] += 1
    for r in range(rounds):
        for i in range(3):
            cid = f"shared-{r}-{i}"
            assert (status[(cid, "recorded")], status[(cid, "already_recorded")]) == (1, 1), cid

    # no duplicate, no lost event
    per_agg = events_per_aggregate(a)
    assert max(per_agg.values()) == 1
    a.catch_up()
    with a.engine.connect() as conn:
        kinds = Counter(conn.execute(select(evidence.c.kind)).scalars())
        steps = conn.execute(select(func.count()).select_from(event_log)
                             .where(event_log.c.kind == "assessment_proposed")).scalar()
    assert kinds == Counter({"provider_inspection": rounds * 3, "unannounced_inspection": rounds * 2,
                             "provider_registered": 1})
    # both writers appended to the same assessment aggregate: every step kept, versions 1..n
    assert steps == rounds * 2
    versions = sorted(v for (oid, v) in per_agg if oid == assessment_id("886", 2011))
    assert versions == list(range(1, rounds * 2 + 2))

    # the live read model (built by two projectors racing) equals a rebuild
    live = digest(a.engine)
    b.rebuild()
    assert digest(b.engine) == live

    # a lost race leaves a hole in PostgreSQL's id sequence; export / restore keeps the positions
    path = tmp_path / "export.jsonl"
    a.export(path)
    notes = [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in a.iter_notifications()]
    a.close()
    b.close()
    empty_postgres(pg_url)
    restored = Ledger(pg_url, clock=clock)
    try:
        restored.restore(path.read_text(encoding="utf-8").splitlines())
        assert [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in restored.iter_notifications()] == notes
        assert digest(restored.engine) == live
    finally:
        restored.close()



def test_same_client_id_with_different_content_at_once(two_ledgers):
    a, b = two_ledgers
    a.record([post("provider_registered", "reg-1")])
    outcomes = together(
        lambda: a.record([post("provider_inspection", "dup", overall_effectiveness="good")]),
        lambda: b.record([post("provider_inspection", "dup", overall_effectiveness="inadequate")]),
    )
    conflicts = [o for o in outcomes if isinstance(o, ConflictingPosting)]
    recorded = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(conflicts) == 1 and len(recorded) == 1, outcomes
    [e] = conflicts[0].errors
    assert (e.field, e.value) == ("client_id", "dup") and "different content" in e.reason
    a.catch_up()
    with a.engine.connect() as conn:
        grades = conn.execute(select(evidence.c.data).where(evidence.c.client_id == "dup")).scalars().all()
    assert len(grades) == 1
    assert recorded[0].outcomes[0].status == "recorded"
    winner = "good" if outcomes[0] is recorded[0] else "inadequate"  # outcomes are in (a, b) order
    assert grades[0]["overall_effectiveness"] == winner


def test_two_corrections_of_one_item_at_once_are_both_kept(two_ledgers):
    a, b = two_ledgers
    a.record([post("provider_registered", "reg-1"), post("provider_inspection", "sched-2011-0042")])
    outcomes = together(
        lambda: a.record([post("correction", "fix-a", changes={"staying_safe": "outstanding"})]),
        lambda: b.record([post("correction", "fix-b", changes={"enjoying_and_achieving": "good"})]),
    )
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    a.catch_up()
    with a.engine.connect() as conn:
        versions = conn.execute(select(evidence).where(evidence.c.client_id == "sched-2011-0042")
                                .order_by(evidence.c.version)).mappings().all()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["recorded_to"] is None for v in versions] == [False, False, True]
    assert versions[-1]["data"]["staying_safe"] == "outstanding"
    assert versions[-1]["data"]["enjoying_and_achieving"] == "good"


def test_two_projectors_at_once_do_not_corrupt_the_read_model(pg_url):
    writer = Ledger(pg_url, clock=clock)
    try:
        postings = [post("provider_registered", "reg-1")]
        postings += [post("provider_inspection", f"i-{n}", occurred_on=f"2011-0{1 + n % 8}-1{n % 10}",
                          published_on="2011-09-30") for n in range(40)]
        postings += [post("correction", f"fix-{n}", target=f"i-{n}", changes={"staying_safe": "inadequate"})
                     for n in range(0, 40, 3)]
        writer.record(postings, project=False)
        writer.record([post("withdrawal", f"w-{n}", target=f"i-{n}") for n in range(1, 40, 5)], project=False)
        total = writer.projector.log_position()

        engines = [make_engine(pg_url), make_engine(pg_url)]
        projectors = [Projector(writer.app, e, batch_size=5) for e in engines]
        applied = together(*(p.run for p in projectors))
        for e in engines:
            e.dispose()
        assert all(isinstance(n, int) for n in applied), applied
        assert sum(applied) == total  # each event applied once, by one of them
        assert writer.projector.position() == total
        raced = digest(writer.engine)
        writer.rebuild()
        assert digest(writer.engine) == raced
        with writer.engine.connect() as conn:
            open_rows = conn.execute(select(func.count()).select_from(evidence)
                                     .where(evidence.c.recorded_to.is_(None))).scalar()
        assert open_rows == 1 + 40 - 8  # the provider, the inspections not withdrawn
    finally:
        writer.close()


def test_processes_starting_together_on_an_empty_database_create_its_tables_once(pg_url):
    """Several API workers start at once on an empty database: each opens the ledger and the
    token store; none may fail on another's CREATE TABLE ("tuple concurrently updated")."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    script = (f"import sys; sys.path.insert(0, {src!r});"
              "from adapters.ledger import Ledger; from adapters.tokens import TokenStore;"
              f"led = Ledger({pg_url!r}); TokenStore(led.engine, 'x' * 40); led.close(); print('ok')")
    for _ in range(3):
        empty_postgres(pg_url)
        procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(6)]
        results = [p.communicate(timeout=120) for p in procs]
        failed = [err.strip().splitlines()[-1:] for (out, err), p in zip(results, procs, strict=True)
                  if p.returncode != 0 or out.strip() != "ok"]
        assert not failed, failed
