"""Ofsted's management-information (MI) CSV of children's social care providers,
turned into raw postings of the integration format (ADR 0004).

The layout is that of "Children's social care data in England 2017 to 2018":
two header rows (the first names sections such as "Provider information", the
second holds the column names), DD/MM/YYYY dates, UTF-8 possibly with a byte
order mark, trailing empty columns, and column names whose case differs between
files ("Registration Status" / "Registration status"). Columns are matched by
name, case and spacing ignored, never by position.

Each data row gives at most two raw postings:
- `provider_registered` (client id `ofsted-mi:provider:<URN>`) the first time a
  URN is seen, unless the ledger already holds that provider;
- `provider_inspection` (client id `ofsted-mi:inspection:<Event number>`) when
  the row carries a four-point overall effectiveness grade.
A row whose provision belongs to no group of Table 1, or whose overall
effectiveness is not a four-point grade, is *skipped* and counted by reason;
a row that cannot be read (unknown authority, bad date, unknown provision type,
unknown grade word) is an *error* naming its file line, column and value.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from domain.authorities import Authorities, UnknownAuthority
from domain.errors import FieldError
from domain.postings import parse_posting
from domain.vocabulary import parse_grade

SECTION_HEADER = "provider information"

# Column names of the second header row, normalised (lower case, single spaces).
URN = "urn"
PROVISION_TYPE = "provision type"
LOCAL_AUTHORITY = "local authority"
SECTOR = "sector"
NAME = "name"
EVENT_TYPE = "event type"
INSPECTION_DATE = "inspection date"
PUBLICATION_DATE = "publication date"
EVENT_NUMBER = "event number"
OVERALL = "overall effectiveness"
OUTCOMES = "outcomes for children and young people"
SAFEGUARDING = "safeguarding children and young people"
QUALITY_OF_CARE = "quality of care"
LEADERSHIP = "leadership and management"

REQUIRED_COLUMNS = (URN, PROVISION_TYPE, LOCAL_AUTHORITY, SECTOR, EVENT_TYPE, INSPECTION_DATE,
                    PUBLICATION_DATE, EVENT_NUMBER, OVERALL)
# The columns that identify the layout (detect_format).
LAYOUT_COLUMNS = (URN, PROVISION_TYPE, LOCAL_AUTHORITY, INSPECTION_DATE)

# The six names the MI files spell differently from local-authorities-2011.csv
# (data/README.md). Any other name that does not match is an error, never a guess.
LA_ALIASES: dict[str, str] = {
    "bristol": "Bristol, City of",
    "durham": "County Durham",
    "herefordshire": "Herefordshire, County of",
    "kingston upon hull": "Kingston upon Hull, City of",
    "southend on sea": "Southend-on-Sea",
    "st helens": "St. Helens",
}

LA_SECTOR = "local authority"

# Provision types (normalised) and their inspection group (ADR 0004).
CHILDRENS_HOME_TYPES = frozenset({
    "children's home",
    "secure children's home",
    # Registered and inspected as a children's home (open more than 295 days a
    # year): counted with the children's homes, by sector.
    "residential special school (registered as a children's home)",
})
GROUP_BY_TYPE: dict[str, str] = {
    "residential special school": "residential_special_schools",
    "independent fostering agency": "pv_fostering_adoption",
    "voluntary adoption agency": "pv_fostering_adoption",
}
# Provision that Table 1 has no group for: counted as skipped, never dropped silently.
NO_GROUP_TYPES = frozenset({
    "secure training centre",
    "boarding school",
    "residential family centre",
    "residential holiday scheme for disabled children",
    "further education college with residential accommodation",
    "cafcass",
    # Supports adoptive families but is not an adoption agency (it neither
    # approves adopters nor places children): no group (ADR 0004).
    "adoption support agency",
})

# Overall-effectiveness words that are not a point of the four-point scale: the
# row is skipped (counted by reason). Any other unknown word is an error.
NOT_FOUR_POINT_WORDS = frozenset({
    "improved effectiveness",
    "sustained effectiveness",
    "declined in effectiveness",
    "declined effectiveness",
    "not judged",
})

# Framework labels (informational; ¶30: the children's homes framework changed
# on 1 April 2011, and again on 1 April 2015 with the 'requires improvement' scale).
FRAMEWORK_BY_GROUP: dict[str, str] = {
    "residential_special_schools": "residential_special_schools",
}
FRAMEWORK_BY_TYPE: dict[str, str] = {
    "independent fostering agency": "independent_fostering_agencies",
    "voluntary adoption agency": "voluntary_adoption_agencies",
}
CHILDRENS_HOMES_FRAMEWORKS: tuple[tuple[date, str], ...] = (
    (date(2015, 4, 1), "childrens_homes_2015"),
    (date(2011, 4, 1), "childrens_homes_2011"),
    (date.min, "childrens_homes_pre_2011"),
)

INSPECTION_TYPES: dict[str, str] = {
    "full inspection": "full",
    "interim inspection": "interim",
    "monitoring inspection": "monitoring",
}

REDACTED = "redacted"

SKIP_NO_GROUP = "no inspection group in Table 1: {}"
SKIP_NOT_FOUR_POINT = "overall effectiveness is not a four-point grade: {}"
SKIP_NO_GRADE = "no overall effectiveness grade"


def norm(text: str) -> str:
    """A column name or a value for matching: lower case, single spaces, plain apostrophes."""
    return " ".join(str(text).replace("\u2019", "'").replace("\ufeff", "").split()).lower()


# --- reading the file -----------------------------------------------------


@dataclass(frozen=True)
class MiRow:
    line: int  # the file line the row starts on (1-based; data starts on line 3)
    values: Mapping[str, str]  # normalised column name -> value (stripped)
    original: Mapping[str, str]  # the file's own column names -> value, for rejects files


class MiLayoutError(ValueError):
    """The file is not in the MI layout (the message says why)."""


def is_mi_header(row1: list[str], row2: list[str]) -> bool:
    """Whether two first rows look like Ofsted's MI layout."""
    if not row1 or not norm(row1[0]).startswith(SECTION_HEADER):
        return False
    names = {norm(c) for c in row2}
    return all(c in names for c in LAYOUT_COLUMNS)


def read_rows(lines: Iterable[str]) -> Iterator[MiRow]:
    """Rows of an MI CSV, from an iterable of text lines (keep their line endings)."""
    reader = csv.reader(lines)
    try:
        row1 = next(reader)
        row2 = next(reader)
    except StopIteration:
        raise MiLayoutError("fewer than two header rows") from None
    if not is_mi_header(row1, row2):
        raise MiLayoutError("row 1 must start with 'Provider information' and row 2 must name the columns "
                            + ", ".join(LAYOUT_COLUMNS))
    header = [c.strip() for c in row2]
    keys = [norm(c) for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in keys]
    if missing:
        raise MiLayoutError("row 2 lacks the column(s) " + ", ".join(missing))
    last = reader.line_num
    for cells in reader:
        start, last = last + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, str] = {}
        original: dict[str, str] = {}
        for i, cell in enumerate(cells):
            name = header[i] if i < len(header) else ""
            if not name:
                if cell.strip():
                    original[f"column {i + 1}"] = cell
                continue
            original[name] = cell
            values.setdefault(keys[i], cell.strip())
        yield MiRow(start, values, original)


# --- mapping one row --------------------------------------------------------


def group_for(provision_type: str, sector: str) -> tuple[str | None, str | None]:
    """(group, None) for provision in a Table 1 group; (None, skip reason) for
    provision with no group; (None, None) for a provision type the importer does not know."""
    pt = norm(provision_type)
    if pt in CHILDRENS_HOME_TYPES:
        return ("la_childrens_homes" if norm(sector) == LA_SECTOR else "pv_childrens_homes"), None
    if pt in GROUP_BY_TYPE:
        return GROUP_BY_TYPE[pt], None
    if pt in NO_GROUP_TYPES:
        return None, SKIP_NO_GROUP.format(provision_type.strip())
    return None, None


def resolve_la(name: str, authorities: Authorities) -> str | None:
    """The 3-digit code of an authority named in an MI file, or None if unknown."""
    key = norm(name)
    if not key:
        return None
    try:
        return authorities.resolve(LA_ALIASES.get(key, key)).la_code
    except UnknownAuthority:
        return None


def parse_mi_date(text: str) -> date:
    """DD/MM/YYYY (day and month may have one digit). ValueError otherwise."""
    parts = text.strip().split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        raise ValueError("not a date in the form DD/MM/YYYY")
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError as e:
        raise ValueError(f"not a valid calendar date ({e})") from None


def framework_for(group: str, provision_type: str, occurred_on: date) -> str | None:
    if group in ("la_childrens_homes", "pv_childrens_homes"):
        return next(name for start, name in CHILDRENS_HOMES_FRAMEWORKS if occurred_on >= start)
    return FRAMEWORK_BY_TYPE.get(norm(provision_type)) or FRAMEWORK_BY_GROUP.get(group)


def provider_client_id(urn: str) -> str:
    return f"ofsted-mi:provider:{urn}"


def inspection_client_id(event_number: str) -> str:
    return f"ofsted-mi:inspection:{event_number}"


@dataclass
class RowMapping:
    """What one row says: the provider it names (if in a group), the inspection
    (if four-point graded), the reason it is skipped, or its errors."""

    line: int
    provider: dict[str, Any] | None = None
    inspection: dict[str, Any] | None = None
    skipped: str | None = None
    errors: list[FieldError] = field(default_factory=list)


def _column(row: MiRow, key: str) -> str:
    """The file's own spelling of a column, for error messages."""
    return next((k for k in row.original if norm(k) == key), key)


def _sub_grade(row: MiRow, key: str, errors: list[FieldError]) -> str | None:
    word = row.values.get(key, "")
    if not word or norm(word) in NOT_FOUR_POINT_WORDS:
        return None
    grade = parse_grade(word)
    if grade is None:
        errors.append(FieldError(_column(row, key), word, "not a grade: outstanding / good / requires "
                                 "improvement (to be good) / adequate / satisfactory / inadequate", row.line))
        return None
    return grade.value


def map_row(row: MiRow, authorities: Authorities) -> RowMapping:
    """Map one MI row, independently of the ledger's state."""
    v, line = row.values, row.line
    out = RowMapping(line)
    errors = out.errors

    group, skip = group_for(v.get(PROVISION_TYPE, ""), v.get(SECTOR, ""))
    if group is None and skip is None:
        errors.append(FieldError(_column(row, PROVISION_TYPE), v.get(PROVISION_TYPE, ""),
                                 "provision type unknown to the MI importer (ADR 0004): no group can be given", line))
        return out
    if group is None:
        out.skipped = skip
        return out

    urn = v.get(URN, "")
    if not urn:
        errors.append(FieldError(_column(row, URN), urn, "is required", line))
    la_code = resolve_la(v.get(LOCAL_AUTHORITY, ""), authorities)
    if la_code is None:
        errors.append(FieldError(_column(row, LOCAL_AUTHORITY), v.get(LOCAL_AUTHORITY, ""),
                                 "not one of the 152 local authorities of 2011 (nor a known alias)", line))
    provider: dict[str, Any] = {"type": "provider_registered", "client_id": provider_client_id(urn),
                                "urn": urn, "la_code": la_code, "group": group}
    name = v.get(NAME, "")
    if name and norm(name) != REDACTED:
        provider["name"] = name

    overall_word = v.get(OVERALL, "")
    overall = parse_grade(overall_word)
    if overall is None:
        if not overall_word:
            out.skipped = SKIP_NO_GRADE
        elif norm(overall_word) in NOT_FOUR_POINT_WORDS:
            out.skipped = SKIP_NOT_FOUR_POINT.format(overall_word)
        else:
            errors.append(FieldError(_column(row, OVERALL), overall_word,
                                     "neither a four-point grade nor a known interim or 'not judged' word", line))
    if errors:
        return out
    out.provider = provider
    if out.skipped:
        return out

    event = v.get(EVENT_NUMBER, "")
    if not event:
        errors.append(FieldError(_column(row, EVENT_NUMBER), event, "is required: it is the inspection's id", line))
    dates: dict[str, date] = {}
    for key, target, required in ((INSPECTION_DATE, "occurred_on", True), (PUBLICATION_DATE, "published_on", False)):
        text = v.get(key, "")
        if not text:
            if required:
                errors.append(FieldError(_column(row, key), text, "is required", line))
            continue
        try:
            dates[target] = parse_mi_date(text)
        except ValueError as e:
            errors.append(FieldError(_column(row, key), text, str(e), line))
    event_type = v.get(EVENT_TYPE, "")
    inspection_type = INSPECTION_TYPES.get(norm(event_type), norm(event_type).replace(" ", "_") or None)
    staying_safe = _sub_grade(row, SAFEGUARDING, errors)
    enjoying = _sub_grade(row, OUTCOMES, errors)
    others = {name: g for name, key in (("quality_of_care", QUALITY_OF_CARE), ("leadership_and_management", LEADERSHIP))
              if (g := _sub_grade(row, key, errors)) is not None}
    if errors:
        out.provider = None
        return out
    inspection: dict[str, Any] = {"type": "provider_inspection", "client_id": inspection_client_id(event), "urn": urn,
                                  "occurred_on": dates["occurred_on"].isoformat(),
                                  "overall_effectiveness": overall.value}
    if "published_on" in dates:
        inspection["published_on"] = dates["published_on"].isoformat()
    framework = framework_for(group, v.get(PROVISION_TYPE, ""), dates["occurred_on"])
    if framework:
        inspection["framework"] = framework
    if inspection_type:
        inspection["inspection_type"] = inspection_type
    if staying_safe:
        inspection["staying_safe"] = staying_safe
    if enjoying:
        inspection["enjoying_and_achieving"] = enjoying
    if others:
        inspection["other_judgements"] = others
    out.inspection = inspection
    return out


# --- mapping a file -----------------------------------------------------------


@dataclass
class MappedRow:
    """A row ready for the importer: raw postings in order, or errors, or a skip reason."""

    line: int
    original: Mapping[str, str]
    raws: list[dict[str, Any]]
    errors: list[FieldError]
    skipped: str | None


# Posting fields and the MI columns they come from, to report errors in the file's terms.
COLUMN_OF_FIELD = {"urn": URN, "la_code": LOCAL_AUTHORITY, "group": PROVISION_TYPE, "name": NAME,
                   "occurred_on": INSPECTION_DATE, "published_on": PUBLICATION_DATE,
                   "client_id": EVENT_NUMBER, "overall_effectiveness": OVERALL, "staying_safe": SAFEGUARDING,
                   "enjoying_and_achieving": OUTCOMES}


def _in_file_terms(error: FieldError, row: MiRow) -> FieldError:
    column = COLUMN_OF_FIELD.get(error.field)
    if column is None:
        return error
    value = row.values.get(column, error.value)
    return FieldError(_column(row, column), value, error.reason, error.line)


def _provider_key(raw: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in raw.items() if k not in ("type", "client_id", "actor")))


class MiMapper:
    """Maps rows chunk by chunk, keeping what it has seen of the file so far:
    each URN is registered once (the first valid row that names it), and only if
    `registered` (the ledger's `registered_urns`) does not already hold it; every
    later row naming the same URN must give the same provider details."""

    def __init__(self, authorities: Authorities,
                 registered: Callable[[Iterable[str]], set[str]] | None = None):
        self.authorities = authorities
        self.registered = registered or (lambda urns: set())
        self.known_la_codes = authorities.codes
        self._provider_seen: dict[str, tuple[tuple, int]] = {}  # urn -> (details, first line)
        self._done: set[str] = set()  # URNs registered in the store or emitted from this file

    def map_rows(self, rows: Iterable[MiRow]) -> list[MappedRow]:
        mapped = [(row, map_row(row, self.authorities)) for row in rows]
        # Check each row alone against the integration format before it may register a URN.
        for _row, m in mapped:
            if not m.errors:
                for raw in (m.provider, m.inspection):
                    if raw is not None:
                        _, errs = parse_posting(raw, line=m.line, default_actor="-",
                                                known_la_codes=self.known_la_codes)
                        m.errors += [_in_file_terms(e, _row) for e in errs]
        candidates = {m.provider["urn"] for _, m in mapped
                      if m.provider is not None and not m.errors and m.provider["urn"] not in self._done}
        self._done |= self.registered(candidates) if candidates else set()
        out = []
        for row, m in mapped:
            raws: list[dict[str, Any]] = []
            if not m.errors and m.provider is not None:
                urn = m.provider["urn"]
                key = _provider_key(m.provider)
                seen = self._provider_seen.get(urn)
                if seen is not None and seen[0] != key:
                    m.errors.append(FieldError(_column(row, URN), urn,
                                               f"provider details (authority, group or name) differ from line {seen[1]}",
                                               m.line))
                elif seen is None:
                    self._provider_seen[urn] = (key, m.line)
                if not m.errors and urn not in self._done:
                    raws.append(m.provider)
                    self._done.add(urn)
            if not m.errors and m.inspection is not None:
                raws.append(m.inspection)
            out.append(MappedRow(m.line, row.original, raws if not m.errors else [], m.errors, m.skipped))
        return out
