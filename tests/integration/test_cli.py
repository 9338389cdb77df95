"""The `csa` command line, driven as a user would (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adapters.cli import EXIT_CONFLICT, EXIT_DIFFERENT, EXIT_INVALID, app
from adapters.settings import get_settings

runner = CliRunner()


@pytest.fixture
def csa(store_url, monkeypatch):
    monkeypatch.setenv("CSA_DATABASE_URL", store_url)
    get_settings.cache_clear()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def test_record_is_idempotent_and_history_shows_who_and_what(csa):
    args = ("record", "provider_registered", "urn=EY1", "la_code=886", "group=childminders",
            "occurred_on=2006-01-01", "--actor", "alice")
    first, second = csa(*args), csa(*args)
    assert first.exit_code == 0 and first.stdout.startswith("recorded")
    assert second.exit_code == 0 and second.stdout.startswith("already_recorded")
    csa("record", "provider_inspection", "urn=EY1", "occurred_on=2011-07-01", "overall_effectiveness=good",
        "--client-id", "i1", "--actor", "bob")
    fix = csa("record", "correction", "target=i1", 'changes={"overall_effectiveness": "inadequate"}', "reason=typo")
    assert fix.exit_code == 0, fix.output
    out = csa("history", "--authority", "Kent", "--json")
    rows = json.loads(out.stdout)
    assert [r["event"] for r in rows] == ["Provider.Registered", "Evidence.Recorded", "Evidence.Corrected"]
    assert [r["actor"] for r in rows][:2] == ["alice", "bob"]
    text = csa("history", "--provider", "EY1").stdout
    assert f"↳ of #{rows[1]['position']}" in text  # the correction is shown beside what it corrected


def test_invalid_input_names_field_value_and_reason_and_writes_nothing(csa):
    r = csa("record", "provider_registered", "urn=EY1", "la_code=999", "group=astronauts")
    assert r.exit_code == EXIT_INVALID
    assert "la_code='999': not one of the 152 local authorities" in r.stderr
    assert "group='astronauts': not one of the 22 inspection groups" in r.stderr
    assert "log position: 0" in csa("status").stdout


def test_same_client_id_with_other_content_is_a_conflict(csa):
    csa("record", "provider_registered", "urn=EY1", "la_code=886", "group=childminders")
    csa("record", "provider_inspection", "urn=EY1", "occurred_on=2011-07-01", "overall_effectiveness=good", "--client-id", "i1")
    r = csa("record", "provider_inspection", "urn=EY1", "occurred_on=2011-07-01", "overall_effectiveness=outstanding",
            "--client-id", "i1")
    assert r.exit_code == EXIT_CONFLICT and "already recorded with different content" in r.stderr


def test_import_export_round_trip_and_verify(csa, tmp_path, store_url):
    lines = [
        {"type": "provider_registered", "client_id": "r1", "actor": "feed", "urn": "100", "la_code": "886", "group": "primary_schools"},
        {"type": "provider_inspection", "client_id": "i1", "actor": "feed", "urn": "100", "occurred_on": "2011-07-04",
         "published_on": "2011-09-12", "overall_effectiveness": "good", "staying_safe": "good"},
        {"type": "withdrawal", "client_id": "w1", "actor": "feed", "target": "i1", "reason": "duplicate"},
    ]
    src = tmp_path / "feed.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert csa("import", str(src)).exit_code == 0
    again = csa("import", str(src))
    assert "recorded 0" in again.stdout and "already_recorded 3" in again.stdout
    verified = csa("verify")
    assert verified.exit_code == 0 and "identical" in verified.stdout
    exported = tmp_path / "log.jsonl"
    assert csa("export", str(exported)).exit_code == 0
    header, *events = exported.read_text().splitlines()
    # registration + its client key, inspection, withdrawal + its client key
    assert json.loads(header)["events"] == len(events) == 5
    from adapters.ledger import Ledger
    from projections.projector import digest

    live = Ledger(store_url)
    fresh = Ledger(f"sqlite:///{tmp_path}/fresh.sqlite")
    from adapters.importers import import_file

    import_file(fresh, exported)
    assert [(n.id, n.topic, n.state) for n in fresh.iter_notifications()] == \
        [(n.id, n.topic, n.state) for n in live.iter_notifications()]
    assert digest(fresh.engine)[0] == digest(live.engine)[0]
    live.close()
    fresh.close()


def test_verify_detects_a_tampered_read_model(csa, store_url):
    from sqlalchemy import create_engine, text

    csa("record", "provider_registered", "urn=EY1", "la_code=886", "group=childminders")
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE rm_evidence SET group_code = 'primary_schools'"))
    engine.dispose()
    r = csa("verify")
    assert r.exit_code == EXIT_DIFFERENT
    live, rebuilt = [line.split()[1] for line in r.stdout.splitlines()[:2]]
    assert live != rebuilt


def test_assess_and_exceptions_as_json(csa):
    csa("record", "provider_registered", "urn=H1", "la_code=886", "group=la_childrens_homes")
    csa("record", "provider_inspection", "urn=H1", "occurred_on=2011-08-16", "overall_effectiveness=inadequate")
    assessed = json.loads(csa("assess", "Kent", "--json").stdout)
    assert assessed["la_code"] == "886" and assessed["trace"]
    listed = json.loads(csa("exceptions", "886", "--json").stdout)["exceptions"]
    assert [(e["urn"], e["counts"], e["rule_id"]) for e in listed] == [("H1", True, "cutoff.exception2_care_july_august")]
    assert csa("assess", "886", "--year", "2012").exit_code == EXIT_INVALID
    assert csa("profile", "Atlantis").exit_code == EXIT_INVALID


@pytest.mark.parametrize("stop_with", ["SIGINT", "SIGTERM"])
def test_a_following_projector_process_applies_what_writers_record(store_url, tmp_path, stop_with):
    """`csa project --follow` as a separate projector process: writers record without
    projecting, the projector brings the read model to the log; Ctrl-C or SIGTERM stops it
    cleanly, between pages."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from adapters.ledger import Ledger

    writer = Ledger(store_url)
    csa = Path(sys.executable).with_name("csa")
    proc = subprocess.Popen([str(csa), "project", "--follow", "--interval", "0.1"],
                            env={**os.environ, "CSA_DATABASE_URL": store_url},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        writer.record([{"type": "provider_registered", "client_id": "f1", "actor": "feed", "urn": "F1",
                        "la_code": "886", "group": "childminders"}], project=False)
        log = writer.projector.log_position()
        assert writer.projector.position() < log
        deadline = time.monotonic() + 20
        while writer.projector.position() < log and time.monotonic() < deadline:
            time.sleep(0.1)
        assert writer.projector.position() == log
    finally:
        proc.send_signal(getattr(signal, stop_with))
        out, _ = proc.communicate(timeout=20)
        writer.close()
    assert "read model at log position" in out
    assert proc.returncode == 0


def test_a_one_shot_national_table_keeps_its_facts_for_the_next_process(csa, store_url):
    """ADR 0028: `csa national` keeps the facts it read in the store before the process exits
    (the writing thread is waited for), apart for each known-at time, and the next `csa national`
    answers the same from them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy import create_engine, func, select

    from projections.tables import facts_kept

    csa("record", "provider_registered", "urn=H1", "la_code=886", "group=la_childrens_homes")
    csa("record", "provider_inspection", "urn=H1", "occurred_on=2011-05-16", "published_on=2011-06-01",
        "overall_effectiveness=good")
    exe = Path(sys.executable).with_name("csa")
    env = {**os.environ, "CSA_DATABASE_URL": store_url}

    def national() -> str:
        done = subprocess.run([str(exe), "national", "--format", "json", "--as-at", "2011-11-08",
                               "--known-at", "2011-12-01T00:00:00+00:00"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def kept(asked: str = "now") -> int:
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(facts_kept).where(facts_kept.c.asked == asked)).scalar()
        finally:
            engine.dispose()

    national()
    assert kept("2011-12-01T00:00:00") == 152 and kept() == 0  # as known at the time given
    now = subprocess.run([str(exe), "national", "--format", "json", "--as-at", "2011-11-08"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert now.returncode == 0, now.stderr
    assert kept() == 152
    # the next process, with reading facts from the read model made to fail: it takes them from the store
    refusing = ("import sys\nimport adapters.views as v\n"
                "def refuse(*a, **k):\n    raise SystemExit('read the read model')\n"
                "v.authorities_evidence = v.authority_evidence = refuse\n"
                "from adapters.cli import app\nsys.argv[0] = 'csa'\napp()\n")
    again = subprocess.run([sys.executable, "-c", refusing, "national", "--format", "json", "--as-at", "2011-11-08"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    table, table_again = json.loads(now.stdout), json.loads(again.stdout)
    assert table.pop("known_at") <= table_again.pop("known_at")
    assert table == table_again
    assert next(r for r in table["authorities"] if r["la_code"] == "886")["proposal"] is not None


def test_keep_facts_keeps_every_authoritys_facts_for_the_next_process(csa, store_url, monkeypatch):
    from sqlalchemy import create_engine, func, select

    from projections.tables import facts_kept

    csa("record", "provider_registered", "urn=H1", "la_code=886", "group=la_childrens_homes")
    done = csa("keep-facts")
    assert done.exit_code == 0 and "the store keeps the facts of 152 authorities as known now for 2011" in done.stdout
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(facts_kept)
                                .where(facts_kept.c.asked == "now", facts_kept.c.year == 2011)).scalar() == 152
    finally:
        engine.dispose()
    assert csa("keep-facts", "--year", "2012").exit_code == EXIT_INVALID
    monkeypatch.setenv("CSA_VIEWS_FACTS_IN_STORE", "false")
    get_settings.cache_clear()
    off = csa("keep-facts")
    assert off.exit_code == EXIT_INVALID and "CSA_VIEWS_FACTS_IN_STORE is false" in off.output
