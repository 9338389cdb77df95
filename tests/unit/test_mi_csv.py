"""The mapping of Ofsted's MI CSV rows to postings (ADR 0004), without a store."""

from __future__ import annotations

import json
from datetime import date

import pytest

from adapters import mi_csv
from adapters.importers import ImportFormatError, detect_format
from adapters.reference import authorities

HEADER1 = "Provider information,,,,,,,,,,,,,,,,,Inspection information,,,,,,,,,,,\n"
COLUMNS = ["Web link", "URN", "Linked Education URN", "Provision type", "Registration Status", "Name",
           "Address 1", "Address 2", "Town", "County", "Postcode", "Ofsted Region", "Government Office Region",
           "Local authority", "Parliamentary constituency", "Sector", "Places", "Event type", "Inspection date",
           "Publication date", "Event number", "Overall effectiveness", "Outcomes for children and young people",
           "Quality of care", "Safeguarding children and young people", "Leadership and management"]


def row(line: int = 3, **over: str) -> mi_csv.MiRow:
    values = {"URN": "SC000001", "Provision type": "Children's home", "Name": "REDACTED",
              "Local authority": "Kent", "Sector": "Private", "Event type": "Full inspection",
              "Inspection date": "05/06/2017", "Publication date": "20/07/2017", "Event number": "10000001",
              "Overall effectiveness": "Good", "Outcomes for children and young people": "",
              "Quality of care": "Good", "Safeguarding children and young people": "Requires improvement to be good",
              "Leadership and management": "Outstanding"}
    values.update({k.replace("_", " "): v for k, v in over.items()})
    return mi_csv.MiRow(line, {mi_csv.norm(k): v.strip() for k, v in values.items()}, values)


def mapped(r: mi_csv.MiRow) -> mi_csv.RowMapping:
    return mi_csv.map_row(r, authorities())


# --- provision type and sector -> group ----------------------------------------


@pytest.mark.parametrize(("provision", "sector", "group"), [
    ("Children's home", "Local Authority", "la_childrens_homes"),
    ("Children's home", "Private", "pv_childrens_homes"),
    ("Children's home", "Voluntary", "pv_childrens_homes"),
    ("Children's home", "Health Authority", "pv_childrens_homes"),
    ("Children\u2019s home", "local authority", "la_childrens_homes"),
    ("Secure children's home", "Local Authority", "la_childrens_homes"),
    ("Secure children's home", "Voluntary", "pv_childrens_homes"),
    ("Residential special school (registered as a children's home)", "Local Authority", "la_childrens_homes"),
    ("Residential special school (registered as a children's home)", "Private", "pv_childrens_homes"),
    ("Residential Special School", "Local Authority", "residential_special_schools"),
    ("Residential Special School", "Academy", "residential_special_schools"),
    ("Independent Fostering Agency", "Private", "pv_fostering_adoption"),
    ("Voluntary Adoption Agency", "Voluntary", "pv_fostering_adoption"),
])
def test_group_of_provision(provision, sector, group):
    assert mi_csv.group_for(provision, sector) == (group, None)


@pytest.mark.parametrize("provision", [
    "Secure Training Centre", "Boarding School", "Residential Family Centre",
    "Residential Holiday Scheme for Disabled Children", "Further Education College with Residential Accommodation",
    "CAFCASS", "Adoption Support Agency"])
def test_provision_with_no_group_is_skipped_by_reason(provision):
    group, reason = mi_csv.group_for(provision, "Private")
    assert group is None
    assert reason == f"no inspection group in Table 1: {provision}"
    m = mapped(row(Provision_type=provision))
    assert m.skipped == reason and m.provider is None and m.inspection is None and not m.errors


def test_unknown_provision_type_is_an_error_not_a_skip():
    m = mapped(row(line=7, Provision_type="Space station"))
    assert [(e.field, e.value, e.line) for e in m.errors] == [("Provision type", "Space station", 7)]
    assert m.skipped is None


# --- authorities -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "code"), [
    ("Kent", "886"), ("Birmingham", "330"), ("hertfordshire", "919"),
    ("Bristol", "801"), ("Durham", "840"), ("Herefordshire", "884"), ("Kingston upon Hull", "810"),
    ("Southend on Sea", "882"), ("St Helens", "342")])
def test_authority_names_and_aliases(name, code):
    assert mi_csv.resolve_la(name, authorities()) == code


def test_every_alias_names_an_authority_of_2011():
    names = {a.name for a in authorities().all}
    assert set(mi_csv.LA_ALIASES.values()) <= names


def test_unknown_authority_is_an_error_with_its_line_never_a_guess():
    m = mapped(row(line=42, Local_authority="Kentish Town"))
    assert [(e.field, e.value, e.line) for e in m.errors] == [("Local authority", "Kentish Town", 42)]
    assert m.provider is None and m.inspection is None
    assert mi_csv.resolve_la("Bristol City", authorities()) is None


# --- dates and grades --------------------------------------------------------------


def test_dates():
    assert mi_csv.parse_mi_date("05/06/2017") == date(2017, 6, 5)
    assert mi_csv.parse_mi_date("5/6/2017") == date(2017, 6, 5)
    for bad in ("2017-06-05", "31/02/2017", "05/06/17", ""):
        with pytest.raises(ValueError):
            mi_csv.parse_mi_date(bad)


def test_bad_date_is_an_error_naming_the_column():
    m = mapped(row(line=9, Inspection_date="31/02/2017"))
    assert [(e.field, e.value, e.line) for e in m.errors] == [("Inspection date", "31/02/2017", 9)]
    assert m.provider is None and m.inspection is None


def test_full_row_maps_to_provider_and_inspection():
    m = mapped(row(Outcomes_for_children_and_young_people="Outstanding"))
    assert not m.errors and m.skipped is None
    assert m.provider == {"type": "provider_registered", "client_id": "ofsted-mi:provider:SC000001",
                          "urn": "SC000001", "la_code": "886", "group": "pv_childrens_homes"}
    assert m.inspection == {
        "type": "provider_inspection", "client_id": "ofsted-mi:inspection:10000001", "urn": "SC000001",
        "occurred_on": "2017-06-05", "published_on": "2017-07-20", "framework": "childrens_homes_2015",
        "inspection_type": "full", "overall_effectiveness": "good", "staying_safe": "satisfactory",
        "enjoying_and_achieving": "outstanding",
        "other_judgements": {"quality_of_care": "good", "leadership_and_management": "outstanding"}}


def test_a_real_name_is_kept_and_redacted_is_not():
    assert mapped(row(Name="Oak House")).provider["name"] == "Oak House"
    assert "name" not in mapped(row(Name="REDACTED")).provider


@pytest.mark.parametrize(("word", "grade"), [
    ("Outstanding", "outstanding"), ("Good", "good"), ("Requires improvement to be good", "satisfactory"),
    ("Requires improvement", "satisfactory"), ("Inadequate", "inadequate"),
    ("Adequate", "satisfactory"), ("Satisfactory", "satisfactory"), (" good ", "good")])
def test_grade_words_of_2018_and_2009_2011(word, grade):
    m = mapped(row(Overall_effectiveness=word))
    assert m.inspection["overall_effectiveness"] == grade


@pytest.mark.parametrize(("word", "reason"), [
    ("Improved effectiveness", "overall effectiveness is not a four-point grade: Improved effectiveness"),
    ("Sustained effectiveness", "overall effectiveness is not a four-point grade: Sustained effectiveness"),
    ("Declined in effectiveness", "overall effectiveness is not a four-point grade: Declined in effectiveness"),
    ("Not judged", "overall effectiveness is not a four-point grade: Not judged"),
    ("", "no overall effectiveness grade")])
def test_rows_without_a_four_point_grade_are_skipped_but_name_their_provider(word, reason):
    m = mapped(row(Overall_effectiveness=word, Event_type="Interim inspection"))
    assert m.skipped == reason and not m.errors
    assert m.inspection is None
    assert m.provider["group"] == "pv_childrens_homes"


def test_unknown_grade_word_is_an_error():
    m = mapped(row(line=11, Overall_effectiveness="Superb"))
    assert [(e.field, e.value, e.line) for e in m.errors] == [("Overall effectiveness", "Superb", 11)]
    m = mapped(row(line=12, Safeguarding_children_and_young_people="Fine"))
    assert [(e.field, e.line) for e in m.errors] == [("Safeguarding children and young people", 12)]


def test_not_judged_sub_judgement_is_left_out():
    m = mapped(row(Safeguarding_children_and_young_people="Not judged"))
    assert "staying_safe" not in m.inspection


def test_frameworks_and_inspection_types():
    assert mapped(row(Inspection_date="01/03/2012")).inspection["framework"] == "childrens_homes_2011"
    assert mapped(row(Inspection_date="25/02/2011", Publication_date="")).inspection["framework"] == "childrens_homes_pre_2011"
    assert "published_on" not in mapped(row(Publication_date="")).inspection
    ifa = mapped(row(Provision_type="Independent Fostering Agency", Event_type="Monitoring inspection")).inspection
    assert (ifa["framework"], ifa["inspection_type"]) == ("independent_fostering_agencies", "monitoring")
    rss = mapped(row(Provision_type="Residential Special School")).inspection
    assert rss["framework"] == "residential_special_schools"


# --- reading the layout and mapping a file --------------------------------------------


def csv_text(*rows: list[str], columns=None, trailing: int = 0) -> list[str]:
    cols = columns or COLUMNS
    out = [HEADER1, ",".join(cols + [""] * trailing) + "\n"]
    for r in rows:
        out.append(",".join(f'"{c}"' if "," in c or "\n" in c else c for c in r + [""] * trailing) + "\n")
    return out


def cells(**over: str) -> list[str]:
    r = row(**over).original
    return [r.get(c, "") for c in COLUMNS]


def test_read_rows_by_name_any_case_with_trailing_columns_and_line_numbers():
    cols = [c.upper() for c in COLUMNS]
    text = csv_text(cells(URN="A1"), cells(URN="A2", Name="Two\nlines"), cells(URN="A3"), columns=cols, trailing=3)
    text = ["\ufeff" + text[0]] + text[1:]
    rows = list(mi_csv.read_rows("".join(text).splitlines(keepends=True)))
    assert [(r.line, r.values["urn"]) for r in rows] == [(3, "A1"), (4, "A2"), (6, "A3")]
    assert rows[0].original["URN"] == "A1"


def test_read_rows_refuses_another_layout():
    with pytest.raises(mi_csv.MiLayoutError):
        list(mi_csv.read_rows(["URN,Name\n", "1,x\n"]))
    with pytest.raises(mi_csv.MiLayoutError, match="event number"):
        list(mi_csv.read_rows([HEADER1, "URN,Provision type,Local authority,Inspection date,Sector,Event type,"
                                         "Publication date,Overall effectiveness\n"]))


def test_mapper_registers_each_urn_once_and_not_if_the_ledger_has_it():
    asked = []

    def registered(urns):
        asked.append(set(urns))
        return {"OLD1"} & set(urns)

    mapper = mi_csv.MiMapper(authorities(), registered)
    out = mapper.map_rows([row(3, URN="NEW1", Event_number="1"), row(4, URN="NEW1", Event_number="2"),
                           row(5, URN="OLD1", Event_number="3"),
                           row(6, URN="NEW2", Overall_effectiveness="Sustained effectiveness")])
    types = [[(r["type"], r["urn"]) for r in m.raws] for m in out]
    assert types == [[("provider_registered", "NEW1"), ("provider_inspection", "NEW1")],
                     [("provider_inspection", "NEW1")],
                     [("provider_inspection", "OLD1")],
                     [("provider_registered", "NEW2")]]
    assert out[3].skipped == "overall effectiveness is not a four-point grade: Sustained effectiveness"
    assert asked == [{"NEW1", "OLD1", "NEW2"}]
    # A later chunk does not register NEW1 again, nor ask the ledger about it.
    again = mapper.map_rows([row(7, URN="NEW1", Event_number="4")])
    assert [r["type"] for r in again[0].raws] == ["provider_inspection"]


def test_mapper_refuses_a_urn_whose_details_differ_within_the_file():
    mapper = mi_csv.MiMapper(authorities())
    out = mapper.map_rows([row(3, Event_number="1"), row(8, Event_number="2", Sector="Local Authority")])
    assert not out[0].errors
    assert [(e.field, e.line) for e in out[1].errors] == [("URN", 8)]
    assert "line 3" in out[1].errors[0].reason and out[1].raws == []


def test_mapper_reports_publication_before_inspection_in_the_files_terms():
    out = mi_csv.MiMapper(authorities()).map_rows([row(5, Publication_date="01/06/2017")])
    assert [(e.field, e.value, e.line) for e in out[0].errors] == [("Publication date", "01/06/2017", 5)]
    assert out[0].raws == []


def test_a_rejected_row_does_not_stop_a_later_row_registering_its_urn():
    out = mi_csv.MiMapper(authorities()).map_rows([row(3, Inspection_date="bad"), row(4, Event_number="2")])
    assert out[0].errors and [r["type"] for r in out[1].raws] == ["provider_registered", "provider_inspection"]


# --- detect_format ----------------------------------------------------------------------


def test_detect_format(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n" + json.dumps({"type": "provider_registered"}) + "\n")
    (tmp_path / "e.jsonl").write_text(json.dumps({"format": "csa-ledger-export", "version": 1}) + "\n")
    (tmp_path / "m.csv").write_text("".join(csv_text(cells(), trailing=2)), encoding="utf-8-sig")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert detect_format(tmp_path / "a.jsonl") == "jsonl"
    assert detect_format(tmp_path / "e.jsonl") == "export"
    assert detect_format(tmp_path / "m.csv") == "mi-csv"
    with pytest.raises(ImportFormatError, match="format not recognised"):
        detect_format(tmp_path / "x.csv")


def test_detect_format_of_the_real_files():
    base = "/work/shared/data/ofsted-mi-2018/"
    assert detect_format(base + "providers-as-at-2018-03-31.csv") == "mi-csv"
    assert detect_format(base + "inspections-in-year-2017-18.csv") == "mi-csv"
