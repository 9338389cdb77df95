"""The integration format: every kind of posting, its fields, and how a raw
mapping (a JSON object, a CSV row turned into one) becomes a typed `Posting`.

This catalogue is the single definition of the format: the parser below, the
importers, `docs/events.md` and the HTTP schemas are all derived from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import orjson

from domain.errors import FieldError
from domain.vocabulary import (
    FULL_INSPECTION_SERVICES,
    GRADE_WORDS,
    GROUPS_BY_CODE,
    POLARITIES,
    AssessmentGrade,
    parse_grade,
)

# --- field types -----------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WHOLE = re.compile(r"-?\d+")
_LA_CODE = re.compile(r"\d{3}")
_URN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# Texts already parsed as dates: a file repeats a few thousand dates (a date is immutable, so
# postings may share one). Emptied when it grows past _DATES_MAX.
_DATES: dict[str, date] = {}
_DATES_MAX = 1 << 16


class Reject(ValueError):
    """A value that its field's type refuses; the message is the reason."""


def _date(v: Any) -> date:
    d = _DATES.get(v) if type(v) is str else None
    if d is not None:
        return d
    if isinstance(v, date):
        return v
    if not isinstance(v, str) or not _ISO_DATE.match(v):
        raise Reject("not a date in the form YYYY-MM-DD")
    try:
        d = date.fromisoformat(v)
    except ValueError as e:
        raise Reject(f"not a valid calendar date ({e})") from None
    if len(_DATES) >= _DATES_MAX:
        _DATES.clear()
    _DATES[v] = d
    return d


# The scale's words as written in the format (lower case), to their grades' values.
_GRADE_VALUES = {word: g.value for word, g in GRADE_WORDS.items()}


def _grade(v: Any) -> str:
    value = _GRADE_VALUES.get(v) if type(v) is str else None
    if value is not None:
        return value
    g = parse_grade(v) if isinstance(v, str) else None
    if g is None:
        raise Reject("not on the scale outstanding / good / satisfactory (adequate) / inadequate")
    return g.value


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise Reject("must be non-empty text")
    return v.strip()


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "yes", "no"):
        return v.lower() in ("true", "yes")
    raise Reject("must be true or false")


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise Reject("must be a whole number")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and _WHOLE.fullmatch(v.strip()):
        return int(v)
    raise Reject("must be a whole number")


def _number(v: Any) -> float:
    if isinstance(v, bool):
        raise Reject("must be a number")
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise Reject("must be a number") from None


def _text_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise Reject("must be a list of non-empty texts")
    return [x.strip() for x in v]


def _grade_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise Reject("must be an object of judgement name to grade")
    out = {}
    for k, g in v.items():
        try:
            out[str(k)] = _grade(g)
        except Reject as e:
            raise Reject(f"judgement {k!r}={g!r}: {e}") from None
    return out


def _object(v: Any) -> dict:
    if not isinstance(v, dict):
        raise Reject("must be an object")
    return dict(v)


def _group(v: Any) -> str:
    if v not in GROUPS_BY_CODE:
        raise Reject("not one of the 22 inspection groups of Table 1 (see docs/events.md)")
    return v


def _la_code(v: Any) -> str:
    s = str(v).strip() if isinstance(v, (str, int)) and not isinstance(v, bool) else ""
    if not _LA_CODE.fullmatch(s):
        raise Reject("must be a 3-digit local authority code")
    return s


def _urn(v: Any) -> str:
    s = str(v).strip() if isinstance(v, (str, int)) and not isinstance(v, bool) else ""
    if not _URN.fullmatch(s):
        raise Reject("must be a unique reference number (letters, digits, '-' or '_')")
    return s


def _choice(options: Iterable[str]) -> Callable[[Any], str]:
    opts = tuple(options)

    def parse(v: Any) -> str:
        if v not in opts:
            raise Reject("must be one of " + ", ".join(opts))
        return v

    return parse


def _assessment_grade(v: Any) -> int:
    if isinstance(v, str) and v.strip().lower().replace("performs ", "") in (
        "excellently", "well", "adequately", "poorly"):
        return AssessmentGrade[v.strip().lower().replace("performs ", "").upper()].value
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4:
        return v
    raise Reject("must be 1-4 or excellently / well / adequately / poorly (¶62)")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    parse: Callable[[Any], Any]
    type_doc: str
    required: bool = False
    doc: str = ""


def F(name: str, parse: Callable[[Any], Any], type_doc: str, required: bool = False, doc: str = "") -> FieldSpec:  # noqa: N802
    return FieldSpec(name, parse, type_doc, required, doc)


# Aggregate families a kind belongs to.
EVIDENCE = "evidence"  # a new evidence item, its own aggregate
PROVIDER = "provider"  # provider lifecycle, the provider aggregate (keyed by URN)
FOLLOW_UP = "follow_up"  # supplies, corrects or withdraws an earlier posting
ASSESSMENT = "assessment"  # a step of an authority's assessment for a year


@dataclass(frozen=True)
class Kind:
    name: str
    family: str
    fields: tuple[FieldSpec, ...]
    doc: str
    paragraph: str = ""
    example: dict = field(default_factory=dict)

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def specs(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    @cached_property
    def required(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.required)

    def spec(self, name: str) -> FieldSpec | None:
        return self.specs.get(name)


DATE = "date (YYYY-MM-DD)"
GRADE = "grade: outstanding | good | satisfactory (or adequate) | inadequate"
OCC = lambda doc: F("occurred_on", _date, DATE, True, doc)  # noqa: E731
PUB = F("published_on", _date, DATE, False, "when the report or figure was published; may be supplied later")
LA = F("la_code", _la_code, "3-digit LA code", True, "the local authority (local-authorities-2011.csv)")
URN = F("urn", _urn, "text", True, "the provider's unique reference number")

_ASSESSMENT_COMMON = (LA, F("year", _int, "integer", True, "the assessment year, e.g. 2011"),
                      OCC("when the step was taken"))

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("provider_registered", PROVIDER, (
        URN, LA, F("group", _group, "group code", True, "one of the 22 inspection groups (Table 1)"),
        F("name", _text, "text"),
        F("occurred_on", _date, DATE, False, "registration or opening date, where known"),
    ), "A provider (setting, service, institution) registered in an authority's area, in one inspection group.", "¶18, Table 1",
        {"urn": "EY100001", "la_code": "886", "group": "childminders", "name": "A childminder", "occurred_on": "2006-04-03"}),
    Kind("provider_closed", PROVIDER, (URN, OCC("closing date")),
         "The provider closed; it stays in the historical layers.", "Annex B",
         {"urn": "EY100001", "occurred_on": "2010-07-31"}),
    Kind("provider_restructured", PROVIDER, (
        URN, F("successor_urn", _urn, "text", True, "the provision that replaces it"), OCC("date of the restructuring")),
         "The provider was closed, amalgamated or federated into a successor; its judgement counts until the successor is inspected.", "¶20",
         {"urn": "118000", "successor_urn": "135000", "occurred_on": "2010-09-01"}),
    Kind("provider_no_children_on_roll", PROVIDER, (URN, OCC("from when it had no children on roll")),
         "A registered childcare provider with no children on roll; its inspection is a compliance check.", "¶19",
         {"urn": "EY100002", "occurred_on": "2010-01-01"}),
    Kind("provider_inspection", EVIDENCE, (
        URN, OCC("inspection date (last day)"), PUB,
        F("framework", _text, "text", False, "inspection framework, e.g. 'childrens_homes_2011' (¶30)"),
        F("inspection_type", _text, "text", False, "e.g. full, interim"),
        F("overall_effectiveness", _grade, GRADE, True),
        F("staying_safe", _grade, GRADE, False, "outcome judgement (¶53)"),
        F("enjoying_and_achieving", _grade, GRADE, False, "outcome judgement (¶53)"),
        F("other_judgements", _grade_map, "object of name to grade", False, "any further graded judgements"),
    ), "An inspection of a provider with its overall effectiveness and outcome judgements.", "¶18, ¶27, ¶30",
        {"urn": "EY100001", "occurred_on": "2011-07-12", "published_on": "2011-09-05", "overall_effectiveness": "good",
         "staying_safe": "good", "enjoying_and_achieving": "outstanding"}),
    Kind("compliance_check", EVIDENCE, (
        URN, OCC("date of the check"), PUB, F("compliant", _bool, "true | false", True)),
         "A compliance check of a provider with no children on roll, recorded as satisfactory (compliant) or inadequate.", "¶19",
         {"urn": "EY100002", "occurred_on": "2011-03-02", "compliant": True}),
    Kind("unannounced_inspection", EVIDENCE, (
        LA, OCC("inspection date"), PUB,
        F("priority_actions", _text_list, "list of text", False, "areas for priority action found; empty for none")),
         "Unannounced inspection of contact, referral and assessment; not graded.", "¶35, csa-2009 overview",
         {"la_code": "886", "occurred_on": "2011-02-15", "published_on": "2011-03-10", "priority_actions": []}),
    Kind("full_inspection", EVIDENCE, (
        LA, F("service", _choice(FULL_INSPECTION_SERVICES), "safeguarding | looked_after_children", True),
        OCC("inspection date"), PUB,
        F("overall_effectiveness", _grade, GRADE, True), F("capacity_to_improve", _grade, GRADE, True),
        F("sub_judgements", _grade_map, "object of name to grade"),
        F("reinspection", _bool, "true | false", False, "a re-inspection after an inadequate judgement (¶38-39)")),
         "Inspection of safeguarding or of services for looked after children.", "¶36-40",
         {"la_code": "886", "service": "safeguarding", "occurred_on": "2010-11-19", "published_on": "2010-12-20",
          "overall_effectiveness": "adequate", "capacity_to_improve": "good", "reinspection": False}),
    Kind("joint_area_review", EVIDENCE, (
        LA, OCC("review date"), PUB,
        F("safeguarding", _grade, GRADE, True, "the review's judgement on safeguarding"),
        F("looked_after_children", _grade, GRADE, False, "the review's judgement on looked after children"),
        F("overall_effectiveness", _grade, GRADE, False), F("capacity_to_improve", _grade, GRADE, False)),
         "A joint area review; only those after 1 April 2007 count, standing in where no full inspection has taken place.", "¶37",
         {"la_code": "886", "occurred_on": "2008-03-14", "published_on": "2008-05-01", "safeguarding": "good",
          "looked_after_children": "good"}),
    Kind("serious_case_review_evaluation", EVIDENCE, (
        LA, OCC("evaluation date"), PUB, F("adequate_or_better", _bool, "true | false", True)),
         "Ofsted's evaluation of a serious case review.", "¶34",
         {"la_code": "886", "occurred_on": "2010-06-01", "adequate_or_better": True}),
    Kind("private_fostering_inspection", EVIDENCE, (
        LA, OCC("inspection date"), PUB, F("overall_effectiveness", _grade, GRADE, True)),
         "Inspection of private fostering arrangements.", "Annex A",
         {"la_code": "886", "occurred_on": "2009-10-01", "overall_effectiveness": "satisfactory"}),
    Kind("substantiated_complaint", EVIDENCE, (
        LA, OCC("date substantiated"), PUB, F("summary", _text, "text", True),
        F("whistleblowing", _bool, "true | false"),
        F("safeguarding_concern", _bool, "true | false", False, "raises a concern about safeguarding (¶28 exception 3)")),
         "A substantiated complaint or whistleblowing finding, considered beside Block B.", "¶17",
         {"la_code": "886", "occurred_on": "2011-05-20", "summary": "Delay in strategy meetings", "whistleblowing": False}),
    Kind("indicator_value", EVIDENCE, (
        LA, F("indicator", _text, "text", True, "indicator id (Annex C)"), F("period", _text, "text", True, "e.g. 2010/11"),
        OCC("end of the data period"), PUB, F("value", _number, "number", True),
        F("similar_areas", _number, "number", False, "statistical neighbours' comparator"),
        F("national", _number, "number", False, "national comparator"),
        F("polarity", _choice(POLARITIES), "higher | lower", True, "which direction is better"),
        F("attainment", _bool, "true | false", False, "an educational attainment indicator (¶54)"),
        F("gap", _bool, "true | false", False, "a 'closing the gap' indicator (¶55)")),
         "A published Block C indicator value with its comparators.", "¶46-48, Annex C",
         {"la_code": "886", "indicator": "KS2_L4_EM", "period": "2010", "occurred_on": "2010-07-31",
          "published_on": "2010-12-08", "value": 74.0, "similar_areas": 72.5, "national": 73.0, "polarity": "higher",
          "attainment": True}),
    Kind("published_grade", EVIDENCE, (
        LA, F("year", _int, "integer", True), F("grade", _assessment_grade, "1-4 or excellently | well | adequately | poorly", True),
        OCC("publication date of that year's assessment"), PUB),
         "The published assessment grade of an earlier year.", "¶39, ¶62",
         {"la_code": "886", "year": 2010, "grade": "well", "occurred_on": "2010-12-09"}),
    # Follow-ups
    Kind("publication_date_supplied", FOLLOW_UP, (
        F("target", _text, "client id", True, "the client_id of the posting"), F("published_on", _date, DATE, True)),
         "The publication date of an earlier posting, first unknown, now supplied.", "",
         {"target": "sched-2011-0042", "published_on": "2011-09-20"}),
    Kind("correction", FOLLOW_UP, (
        F("target", _text, "client id", False, "the client_id of the posting corrected"),
        F("urn", _urn, "text", False, "or: the provider whose registration details are corrected"),
        F("changes", _object, "object of field to new value", True, "the corrected fields, in the target's own format"),
        F("reason", _text, "text", True)),
         "Corrects judgements or dates of an earlier posting; the old version stays replayable.", "",
         {"target": "sched-2011-0042", "changes": {"overall_effectiveness": "satisfactory"}, "reason": "Transcription error"}),
    Kind("withdrawal", FOLLOW_UP, (
        F("target", _text, "client id", False, "the client_id of the posting withdrawn"),
        F("urn", _urn, "text", False, "or: the provider withdrawn"),
        F("reason", _text, "text", True)),
         "Withdraws a mistaken posting; it stays in the log, no longer counts from then on.", "",
         {"target": "sched-2011-0042", "reason": "Posted against the wrong provider"}),
    # Assessment steps (workflow rules come with the assessment workflow)
    Kind("assessment_proposed", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("grade", _assessment_grade, "1-4 or word", True),), "The proposed grade was computed and recorded.", "Annex E",
        {"la_code": "886", "year": 2011, "occurred_on": "2011-09-05", "grade": "well"}),
    Kind("inspector_judgement_applied", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("grade", _assessment_grade, "1-4 or word", True), F("reasons", _text, "text", True),
        F("sustained_improvement", _bool, "true | false", False, "well-established, sustained improvement in safeguarding (¶39)")),
         "An inspector applied judgement to the proposal, with reasons.", "¶56-58",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-09-12", "grade": "well", "reasons": "Block A and B agree"}),
    Kind("cutoff_exclusion", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("target", _text, "client id", True, "the inspection excluded"), F("reasons", _text, "text", True)),
         "An inspector excluded a July/August children's home, fostering or adoption inspection from the assessment.", "¶28 (exception 2, 'normally')",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-09-12", "target": "sched-2011-0042", "reasons": "Report withdrawn for moderation"}),
    Kind("draft_letter_sent", ASSESSMENT, _ASSESSMENT_COMMON + (F("grade", _assessment_grade, "1-4 or word", True),),
         "The draft assessment letter was sent to the authority.", "¶12, ¶74",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-09-23", "grade": "well"}),
    Kind("factual_accuracy_query_raised", ASSESSMENT, _ASSESSMENT_COMMON + (F("text", _text, "text", True),),
         "The authority raised a factual-accuracy query.", "¶74",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-09-28", "text": "Children's home X closed in May"}),
    Kind("factual_accuracy_query_resolved", ASSESSMENT, _ASSESSMENT_COMMON + (F("text", _text, "text", True),),
         "A factual-accuracy query was resolved.", "¶75",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-10-03", "text": "Closure confirmed; profile corrected"}),
    Kind("appeal_lodged", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("grounds", _text, "text", True), F("statement_words", _int, "integer", False, "length of the statement (¶77: at most 2,000)"),
        F("cited_refs", _text_list, "list of text", False, "evidence in the draft's base that the appeal cites")),
         "The authority lodged a written appeal.", "¶76-77",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-10-14", "grounds": "Significance given to one inadequate home", "statement_words": 1200}),
    Kind("evaluator_assigned", ASSESSMENT, _ASSESSMENT_COMMON + (F("evaluator", _text, "text", True),),
         "An independent evaluator was assigned to the appeal.", "¶78",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-10-18", "evaluator": "HMI J. Smith"}),
    Kind("appeal_decided", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("outcome", _choice(("upheld", "not_upheld")), "upheld | not_upheld", True),
        F("grade", _assessment_grade, "1-4 or word", False), F("panel", _text_list, "list of text", False)),
         "The panel decided the appeal.", "¶78",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-11-02", "outcome": "not_upheld", "panel": ["Director A", "Director B"]}),
    Kind("grade_approved", ASSESSMENT, _ASSESSMENT_COMMON + (
        F("grade", _assessment_grade, "1-4 or word", True), F("approver", _text, "text", True)),
         "HMCI or a nominee approved the final grade.", "¶79",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-11-04", "grade": "well", "approver": "HMCI"}),
    Kind("assessment_published", ASSESSMENT, _ASSESSMENT_COMMON + (F("grade", _assessment_grade, "1-4 or word", True),),
         "The assessment letter was published.", "¶81",
         {"la_code": "886", "year": 2011, "occurred_on": "2011-11-08", "grade": "well"}),
)}

ENVELOPE = ("type", "client_id", "actor")


# --- the typed posting -------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """One posted fact, parsed and typed. `data` holds the kind's fields only."""

    type: str
    client_id: str
    actor: str
    data: Mapping[str, Any]
    line: int | None = None

    @property
    def kind(self) -> Kind:
        return KINDS[self.type]

    @cached_property
    def content_hash(self) -> str:
        """What 'the same content' means for idempotency: the type and the fields,
        not the actor nor the line it came from (ADR 0003). Computed once per posting
        (a posting is immutable; it is read by the batch and by every event it records)."""
        return content_hash(self.type, self.data)

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def canonical(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def _canonical_default(obj: Any) -> Any:
    """What json cannot encode by itself, as `canonical` turns it (dates as ISO text)."""
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): v for k, v in obj.items()}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# The same text as json.dumps([type, canonical(data)], separators=(",", ":"), ensure_ascii=False)
# (keys sorted at every level, dates as ISO strings, tuples as lists) in one C-encoder pass.
_canonical_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True,
                                   default=_canonical_default).encode


# Values that orjson writes exactly as `_canonical_json` does (the same text, byte for byte:
# texts escaped alike, whole numbers up to 64 bits, true/false/null, dates as YYYY-MM-DD).
# Not floats: orjson writes 1e-07 as 1e-7 and NaN as null. tests/unit/test_content_hash.py
# compares the two over generated values.
_EXACT = frozenset((str, int, bool, type(None), date))
_SORTED = orjson.OPT_SORT_KEYS


def _exact(v: Any) -> bool:
    t = type(v)
    if t in _EXACT:
        return True
    if t is list:
        return all(_exact(x) for x in v)
    if t is dict:
        return all(type(k) is str and _exact(x) for k, x in v.items())
    return False


def content_hash(type_: str, data: Mapping[str, Any]) -> str:
    """The first 32 hex digits of the SHA-256 of `[type, data]` in canonical JSON (keys sorted
    at every level, no spaces, dates as ISO text, not ASCII-escaped). Where every value is one
    orjson writes the same way, orjson writes it (~3 us a posting against ~8 us, issue 5);
    anything else (a float, a tuple, a key not text, a number past 64 bits) takes the
    standard library's encoder, which defines the text."""
    if type(data) is dict and type(type_) is str:
        for v in data.values():
            if type(v) not in _EXACT and not _exact(v):
                break
        else:
            try:
                return hashlib.sha256(orjson.dumps([type_, data], option=_SORTED)).hexdigest()[:32]
            except TypeError:  # orjson.JSONEncodeError: e.g. a whole number past 64 bits
                pass
    try:
        body = _canonical_json([type_, data])
    except TypeError:  # keys of mixed types, which sort_keys cannot order: the general path
        body = json.dumps([type_, canonical(data)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def parse_fields(kind: Kind, raw: Mapping[str, Any], line: int | None, *, partial: bool = False,
                 prefix: str = "", skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[FieldError]]:
    """Type each field of `raw` (but those named in `skip`) by the kind's spec; report every bad field."""
    errors: list[FieldError] = []
    data: dict[str, Any] = {}
    specs = kind.specs
    for name, value in raw.items():
        if name in skip:
            continue
        spec = specs.get(name)
        if spec is None:
            errors.append(FieldError(prefix + name, value, f"not a field of {kind.name}", line))
            continue
        if value is None or value == "":
            if spec.required:
                errors.append(FieldError(prefix + name, value, "is required", line))
            continue
        try:
            data[name] = spec.parse(value)
        except Reject as e:
            errors.append(FieldError(prefix + name, value, str(e), line))
    if not partial:
        for spec in kind.required:
            if spec.name not in raw:
                errors.append(FieldError(prefix + spec.name, None, "is required", line))
    return data, errors


def parse_posting(raw: Mapping[str, Any], *, line: int | None = None, default_actor: str | None = None,
                  known_la_codes: frozenset[str] | None = None) -> tuple[Posting | None, list[FieldError]]:
    """Parse one raw mapping of the integration format. Returns the posting or every error."""
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return None, [FieldError("(line)", raw, "must be a JSON object", line)]
    type_ = raw.get("type")
    kind = KINDS.get(type_) if isinstance(type_, str) else None
    if kind is None:
        return None, [FieldError("type", type_, "unknown event type (see docs/events.md)", line)]
    errors: list[FieldError] = []
    client_id = raw.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > 200:
        errors.append(FieldError("client_id", client_id, "is required: the client's own id, 1-200 characters", line))
    actor = raw.get("actor", default_actor)
    if not isinstance(actor, str) or not actor.strip():
        errors.append(FieldError("actor", actor, "is required: who posted it", line))
    data, field_errors = parse_fields(kind, raw, line, skip=ENVELOPE)
    errors += field_errors
    errors += check_consistency(kind, data, line, known_la_codes)
    if errors:
        return None, errors
    return _posting(type_, client_id.strip(), actor.strip(), data, line), []


_NEW = object.__new__


def _posting(type_: str, client_id: str, actor: str, data: dict[str, Any], line: int | None) -> Posting:
    """`Posting(type_, client_id, actor, data, line)` without the frozen dataclass's `__init__`
    (one `object.__setattr__` a field): the same attributes (tests/unit/test_postings.py)."""
    p = _NEW(Posting)
    p.__dict__.update(type=type_, client_id=client_id, actor=actor, data=data, line=line)
    return p


def posting_fields(p: Posting) -> tuple[str, str, str, Mapping[str, Any], int | None, str]:
    """A posting as plain values, its content hash last: what a bulk import's parsing process
    sends (ADR 0042). `posting_from_fields(*posting_fields(p))` equals `p`, its hash computed."""
    return p.type, p.client_id, p.actor, p.data, p.line, p.content_hash


def posting_from_fields(type_: str, client_id: str, actor: str, data: dict[str, Any], line: int | None,
                        digest: str) -> Posting:
    """The posting `posting_fields` gave, with `digest` as its content hash (where the cached
    property keeps it): the caller vouches that it is `content_hash(type_, data)`."""
    p = _posting(type_, client_id, actor, data, line)
    p.__dict__["content_hash"] = digest
    return p


def check_consistency(kind: Kind, data: Mapping[str, Any], line: int | None,
                      known_la_codes: frozenset[str] | None = None) -> list[FieldError]:
    """Rules within one posting or one item's state (also re-run after a correction)."""
    errors = []
    occ, pub = data.get("occurred_on"), data.get("published_on")
    if isinstance(occ, date) and isinstance(pub, date) and pub < occ:
        errors.append(FieldError("published_on", pub.isoformat(),
                                 f"is before occurred_on {occ.isoformat()}: a report cannot be published before the inspection", line))
    la = data.get("la_code")
    if known_la_codes is not None and la is not None and la not in known_la_codes:
        errors.append(FieldError("la_code", la, "not one of the 152 local authorities of 2011", line))
    if kind.name in ("correction", "withdrawal") and ("target" in data) == ("urn" in data):
        errors.append(FieldError("target", data.get("target"), "give exactly one of target (a client id) or urn (a provider)", line))
    return errors
