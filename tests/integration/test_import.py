"""`csa import` on both stores: the real Ofsted MI files, JSON Lines, exports;
atomicity, idempotency, skip-invalid with a rejects file, conflicts.

The expected figures for the real files are computed here with the csv module
alone, from ADR 0004's table, not with the importer's mapping code.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.importers import ImportFormatError, InvalidImport, import_file
from adapters.ledger import Ledger
from domain.errors import ConflictingPosting
from projections.tables import evidence

DATA = Path("/work/shared/data")
PROVIDERS = DATA / "ofsted-mi-2018" / "providers-as-at-2018-03-31.csv"
INSPECTIONS = DATA / "ofsted-mi-2018" / "inspections-in-year-2017-18.csv"

# --- the expectation, independently of adapters.mi_csv ------------------------------

ALIASES = {"Bristol": "Bristol, City of", "Durham": "County Durham", "Herefordshire": "Herefordshire, County of",
           "Kingston upon Hull": "Kingston upon Hull, City of", "Southend on Sea": "Southend-on-Sea",
           "St Helens": "St. Helens"}
HOMES = {"children's home", "secure children's home", "residential special school (registered as a children's home)"}
OTHERS = {"residential special school": "residential_special_schools",
          "independent fostering agency": "pv_fostering_adoption", "voluntary adoption agency": "pv_fostering_adoption"}
FOUR_POINT = {"outstanding", "good", "requires improvement to be good", "requires improvement", "adequate",
              "satisfactory", "inadequate"}


def _la_codes() -> dict[str, str]:
    with (DATA / "local-authorities-2011.csv").open(encoding="utf-8") as fh:
        codes = {r["name"]: r["la_code"] for r in csv.DictReader(fh)}
    return codes | {alias: codes[name] for alias, name in ALIASES.items()}


def _dmy(text: str) -> date:
    d, m, y = text.split("/")
    return date(int(y), int(m), int(d))


def _rows(path: Path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        names = [c.strip().lower() for c in next(reader)]
        for n, cells in enumerate(reader, start=3):
            yield n, dict(zip(names, cells, strict=False))


def expected(*paths: Path):
    """(providers: urn -> (la, group), inspections: event -> urn, refused lines per file)."""
    codes = _la_codes()
    providers: dict[str, tuple[str, str]] = {}
    inspections: dict[str, str] = {}
    refused: dict[str, list[int]] = {}
    for path in paths:
        refused[path.name] = []
        for n, r in _rows(path):
            kind = r["provision type"].lower()
            if kind in HOMES:
                group = "la_childrens_homes" if r["sector"] == "Local Authority" else "pv_childrens_homes"
            else:
                group = OTHERS.get(kind)
            if group is None:
                continue
            four_point = r["overall effectiveness"].lower() in FOUR_POINT
            if four_point and r["publication date"] and _dmy(r["publication date"]) < _dmy(r["inspection date"]):
                refused[path.name].append(n)  # the ledger refuses a report published before the inspection
                continue
            providers.setdefault(r["urn"], (codes[r["local authority"]], group))
            if four_point:
                inspections[r["event number"]] = r["urn"]
    return providers, inspections, refused


# --- reading the store -----------------------------------------------------------------


def current(ledger: Ledger, kind: str):
    return (evidence.c.kind == kind) & evidence.c.recorded_to.is_(None)


def providers_by_la_group(ledger: Ledger) -> Counter:
    q = (select(evidence.c.la_code, evidence.c.group_code, func.count())
         .where(current(ledger, "provider_registered")).group_by(evidence.c.la_code, evidence.c.group_code))
    with ledger.engine.connect() as conn:
        return Counter({(la, g): n for la, g, n in conn.execute(q)})


def inspections_by_la_group(ledger: Ledger) -> Counter:
    with ledger.engine.connect() as conn:
        where = {u: (la, g) for u, la, g in conn.execute(
            select(evidence.c.urn, evidence.c.la_code, evidence.c.group_code).where(current(ledger, "provider_registered")))}
        urns = [u for (u,) in conn.execute(select(evidence.c.urn).where(current(ledger, "provider_inspection")))]
    return Counter(where[u] for u in urns)


def count(ledger: Ledger, kind: str) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(evidence).where(current(ledger, kind))).scalar_one()


def position(ledger: Ledger) -> int:
    return ledger.projector.log_position()


# --- the real MI files -----------------------------------------------------------------------


def test_real_mi_files_give_the_providers_and_inspections_of_each_group(ledger, tmp_path):
    exp_providers, exp_inspections, refused = expected(PROVIDERS, INSPECTIONS)
    seen = []
    first = import_file(ledger, PROVIDERS, skip_invalid=True, rejects_path=tmp_path / "r1.jsonl", progress=seen.append)
    second = import_file(ledger, INSPECTIONS, skip_invalid=True, rejects_path=tmp_path / "r2.jsonl")

    # Every group of every authority, and three authorities spelled out.
    want_providers = Counter(exp_providers.values())
    want_inspections = Counter(exp_providers[u] for u in exp_inspections.values())
    assert providers_by_la_group(ledger) == want_providers
    assert inspections_by_la_group(ledger) == want_inspections
    for la, group, providers, inspections in [
        ("886", "la_childrens_homes", 6, 6), ("886", "pv_childrens_homes", 71, 72),
        ("886", "pv_fostering_adoption", 27, 27), ("886", "residential_special_schools", 9, 9),
        ("330", "la_childrens_homes", 4, 4), ("330", "pv_childrens_homes", 52, 59),
        ("330", "pv_fostering_adoption", 8, 8), ("330", "residential_special_schools", 2, 2),
        ("919", "la_childrens_homes", 6, 6), ("919", "pv_childrens_homes", 8, 8),
        ("919", "pv_fostering_adoption", 1, 1), ("919", "residential_special_schools", 6, 6),
    ]:
        assert want_providers[la, group] == providers, (la, group)
        assert want_inspections[la, group] == inspections, (la, group)

    # Counts of the report: both files describe many inspections; the second adds only what is new.
    only_first = expected(PROVIDERS)
    assert first.recorded == len(only_first[0]) + len(only_first[1])
    assert first.recorded + second.recorded == len(exp_providers) + len(exp_inspections)
    assert second.already_recorded > 2000 and first.already_recorded == 0
    assert first.skipped_by_reason["no inspection group in Table 1: Boarding School"] == 77
    assert second.skipped_by_reason["overall effectiveness is not a four-point grade: Sustained effectiveness"] == 200
    assert second.skipped_by_reason["no overall effectiveness grade"] > 0
    # One real row says its report was published the day before the inspection: refused, not guessed.
    assert refused == {PROVIDERS.name: [1845], INSPECTIONS.name: [2289]}
    rejects = [json.loads(x) for x in (tmp_path / "r1.jsonl").read_text().splitlines()]
    assert [(r["line"], r["row"]["URN"], r["errors"][0]["field"]) for r in rejects] == [(1845, "SC394478", "Publication date")]
    assert (first.rejected, second.rejected) == (1, 1)
    assert seen and seen[-1]["stage"] == "done" and seen[-1]["rows"] == 2797


def test_importing_the_same_file_twice_records_nothing_new(ledger, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the rejects file goes to the current directory by default
    first = import_file(ledger, PROVIDERS, skip_invalid=True)
    at = position(ledger)
    again = import_file(ledger, PROVIDERS, skip_invalid=True)
    assert first.recorded > 5000
    assert again.recorded == 0
    assert again.already_recorded == first.recorded - count(ledger, "provider_registered")  # providers are not re-posted
    assert position(ledger) == at


def _mi_file(path: Path, rows: list[dict[str, str]]) -> Path:
    with PROVIDERS.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        head1, head2 = next(reader), next(reader)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head1)
        w.writerow(head2 + ["", ""])
        for over in rows:
            base = {"URN": "SC900001", "Provision type": "Children's home", "Local authority": "Kent",
                    "Sector": "Private", "Event type": "Full inspection", "Inspection date": "05/06/2017",
                    "Publication date": "20/07/2017", "Event number": "90000001", "Overall effectiveness": "Good"}
            base.update(over)
            w.writerow([base.get(c, "") for c in head2] + ["", ""])
    return path


def test_an_invalid_mi_file_writes_nothing_and_names_every_bad_line(ledger, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default rejects file goes to the current directory
    path = _mi_file(tmp_path / "mi.csv", [
        {},
        {"URN": "SC900002", "Local authority": "Kentish Town", "Event number": "90000002"},
        {"URN": "SC900003", "Inspection date": "31/02/2017", "Event number": "90000003"},
        {"URN": "SC900004", "Provision type": "Boarding School", "Event number": "90000004"},
    ])
    with pytest.raises(InvalidImport) as caught:
        import_file(ledger, path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(4, "Local authority"), (5, "Inspection date")]
    assert caught.value.report.skipped_by_reason == {"no inspection group in Table 1: Boarding School": 1}
    assert position(ledger) == 0

    report = import_file(ledger, path, skip_invalid=True)
    assert (report.recorded, report.rejected) == (2, 2)
    assert Path(report.rejects_path) == tmp_path / "mi.csv.rejects.jsonl"
    assert [json.loads(x)["line"] for x in Path(report.rejects_path).read_text().splitlines()] == [4, 5]


# --- JSON Lines ------------------------------------------------------------------------------------


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


PROVIDER = {"type": "provider_registered", "client_id": "p-1", "urn": "U1", "la_code": "886", "group": "childminders"}
INSPECTION = {"type": "provider_inspection", "client_id": "i-1", "urn": "U1", "occurred_on": "2011-03-01",
              "published_on": "2011-04-01", "overall_effectiveness": "good"}

MIXED = [
    PROVIDER,                                                              # 1 good
    "",                                                                    # 2 blank: ignored
    '{"type": "provider_registered", "client_id": ',                      # 3 malformed JSON
    {"type": "provider_exploded", "client_id": "x-1"},                    # 4 unknown type
    {**PROVIDER, "client_id": "p-2", "urn": "U2", "la_code": "999"},      # 5 unknown authority
    {**INSPECTION, "client_id": "i-2", "published_on": "2011-02-01"},     # 6 published before inspected
    {**INSPECTION, "client_id": "i-3", "urn": "NOPE"},                    # 7 no such provider (state)
    INSPECTION,                                                            # 8 good
]


def test_an_invalid_jsonl_file_writes_nothing_and_reports_every_bad_line(ledger, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", MIXED)
    with pytest.raises(InvalidImport) as caught:
        import_file(ledger, path, actor="data-team")
    assert sorted({e.line for e in caught.value.errors}) == [3, 4, 5, 6, 7]
    by_line = {e.line: e for e in caught.value.errors}
    assert "malformed JSON" in by_line[3].reason
    assert (by_line[4].field, by_line[5].field, by_line[6].field, by_line[7].field) == (
        "type", "la_code", "published_on", "urn")
    assert caught.value.report.rejected == 5
    assert position(ledger) == 0
    assert count(ledger, "provider_registered") == 0


def test_skip_invalid_records_the_good_lines_and_writes_rejects(ledger, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", MIXED)
    report = import_file(ledger, path, skip_invalid=True, rejects_path=tmp_path / "rejects.jsonl", actor="data-team")
    assert (report.recorded, report.already_recorded, report.rejected) == (2, 0, 5)
    assert count(ledger, "provider_registered") == 1 and count(ledger, "provider_inspection") == 1
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3, 4, 5, 6, 7]
    assert rejects[0]["row"].startswith('{"type": "provider_registered"')
    assert rejects[4]["row"]["urn"] == "NOPE"
    assert rejects[4]["errors"][0]["field"] == "urn" and "not a registered provider" in rejects[4]["errors"][0]["reason"]
    with ledger.engine.connect() as conn:
        assert conn.execute(select(evidence.c.actor).where(current(ledger, "provider_inspection"))).scalar_one() == "data-team"

    again = import_file(ledger, path, skip_invalid=True, rejects_path=tmp_path / "rejects.jsonl")
    assert (again.recorded, again.already_recorded, again.rejected) == (0, 2, 5)


def test_same_client_id_with_other_content_is_a_conflict_and_writes_nothing(ledger, tmp_path):
    import_file(ledger, _jsonl(tmp_path / "a.jsonl", [PROVIDER, INSPECTION]))
    at = position(ledger)
    other = _jsonl(tmp_path / "b.jsonl", [{**INSPECTION, "client_id": "i-9"},
                                          {**INSPECTION, "overall_effectiveness": "inadequate"}])
    with pytest.raises(ConflictingPosting) as caught:
        import_file(ledger, other)
    assert [(e.line, e.field) for e in caught.value.errors] == [(2, "client_id")]
    assert position(ledger) == at
    with pytest.raises(ConflictingPosting):
        import_file(ledger, other, skip_invalid=True)
    assert position(ledger) == at


def test_unrecognised_files_are_refused(ledger, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFormatError):
        import_file(ledger, path)
    with pytest.raises(ImportFormatError):
        import_file(ledger, path, fmt="mi-csv")


# --- exports -------------------------------------------------------------------------------------------


def test_an_export_imports_into_an_empty_store(ledger, tmp_path, clock):
    import_file(ledger, _jsonl(tmp_path / "a.jsonl", [PROVIDER, INSPECTION]))
    exported = tmp_path / "export.jsonl"
    n = ledger.export(exported)
    target = Ledger(f"sqlite:///{tmp_path}/target.sqlite", clock=clock)
    try:
        report = import_file(target, exported)
        assert (report.format, report.recorded) == ("export", n)
        assert count(target, "provider_inspection") == 1
        assert position(target) == position(ledger)
    finally:
        target.close()
