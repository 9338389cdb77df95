"""docs/events.md, rendered from the posting catalogue (`domain.postings.KINDS`).

`render()` returns the document; `python -m adapters.events_doc` rewrites
docs/events.md (or prints it with `-`). tests/unit/test_events_doc.py fails when
the committed file and the catalogue disagree, so the document cannot drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from domain.postings import (
    ASSESSMENT,
    ENVELOPE,
    EVIDENCE,
    FOLLOW_UP,
    KINDS,
    PROVIDER,
    FieldSpec,
    Kind,
)
from domain.vocabulary import (
    GRADE_WORDS,
    GROUPS,
    SUPER_GROUPS_BY_CODE,
    AssessmentGrade,
)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "events.md"

FAMILIES = (
    (PROVIDER, "Providers", "A provider's lifecycle, keyed by its URN. Register a provider before posting "
     "anything about it; a URN is registered once (correct its details with a `correction` naming `urn`)."),
    (EVIDENCE, "Evidence", "A new evidence item. Each posting is its own item, identified by its `client_id`; "
     "follow-ups name it by that id."),
    (FOLLOW_UP, "Follow-ups", "Supply a publication date, correct or withdraw an earlier posting, named by its "
     "`client_id` in `target` or, for a provider's registration, by `urn` (exactly one of the two). The "
     "earlier version stays replayable. A correction cannot change `urn` or `la_code` (or a provider's "
     "`urn`): withdraw the posting and post it again. A correction or a supplied date must leave the item "
     "consistent (`published_on` not before `occurred_on`)."),
    (ASSESSMENT, "Assessment steps", "A step of one authority's assessment for one year (`la_code` + `year`). "
     "Steps are recorded as posted; the workflow's rules (deadlines, independence) belong to the assessment "
     "workflow."),
)

ACTORS = {PROVIDER: "ofsted-feed", EVIDENCE: "ofsted-feed", FOLLOW_UP: "ofsted-feed", ASSESSMENT: "hmi.a.example"}


def example_client_id(kind: Kind) -> str:
    """The client id shown in a kind's example. The provider inspection's is the
    id its follow-up examples name in `target`."""
    return "sched-2011-0042" if kind.name == "provider_inspection" else f"example:{kind.name}"


def example_posting(kind: Kind) -> dict[str, Any]:
    """A kind's example as a complete raw posting (envelope + fields)."""
    return {"type": kind.name, "client_id": example_client_id(kind), "actor": ACTORS[kind.family], **kind.example}


def example_line(kind: Kind) -> str:
    return json.dumps(example_posting(kind), ensure_ascii=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(kind: Kind) -> str:
    return kind.name  # GitHub keeps underscores in heading anchors


def _allowed(spec: FieldSpec) -> str | None:
    """Where a field's allowed values are listed, if they are a closed set."""
    t = spec.type_doc
    if t == "group code":
        return "[inspection groups](#inspection-groups)"
    if "1-4" in t:
        return "[assessment grades](#assessment-grades)"
    if t.startswith("grade") or t.endswith("to grade"):
        return "[grade words](#grade-words)"
    if "|" in t and not t.startswith("true"):
        return ", ".join(f"`{v.strip()}`" for v in t.split("|"))
    return None


def _kind_section(kind: Kind) -> list[str]:
    out = [f"#### `{kind.name}`", "", kind.doc, ""]
    if kind.paragraph:
        out += [f"Guidance: {kind.paragraph}.", ""]
    out += ["| field | type | required | meaning |", "|---|---|---|---|"]
    for f in kind.fields:
        meaning = f.doc
        allowed = _allowed(f)
        if allowed:
            meaning = f"{meaning}; values: {allowed}" if meaning else f"values: {allowed}"
        out.append(f"| `{f.name}` | {_cell(f.type_doc)} | {'yes' if f.required else 'no'} | {_cell(meaning)} |")
    out += ["", "Example:", "", "```json", example_line(kind), "```", ""]
    return out


def render() -> str:
    """The whole of docs/events.md."""
    lines: list[str] = [
        "# The integration format: event types",
        "",
        "<!-- Generated from src/domain/postings.py by `python -m adapters.events_doc`; do not edit by hand. "
        "tests/unit/test_events_doc.py fails if this file and the catalogue disagree. -->",
        "",
        "Integrations post evidence to the ledger as **JSON Lines**: one JSON object per line, UTF-8, each "
        "object one *posting* (`csa import FILE` reads such a file; `csa record TYPE field=value ...` "
        "posts one from the command line). Every type the ledger accepts is listed below with its "
        "fields, the values they allow and a complete example line. Paragraph numbers (¶) refer to "
        "csa-2011-arrangements.txt unless another text is named.",
        "",
        "## Contents",
        "",
        "- [The envelope](#the-envelope)",
        "- [Idempotency and conflicts](#idempotency-and-conflicts)",
        "- [The three clocks](#the-three-clocks)",
        "- [Field types](#field-types)",
        "- [Event types](#event-types)",
    ]
    for family, title, _ in FAMILIES:
        lines.append(f"  - {title}: " + ", ".join(f"[`{k.name}`](#{_anchor(k)})" for k in KINDS.values()
                                                   if k.family == family))
    lines += [
        "- [Allowed values](#allowed-values): [inspection groups](#inspection-groups), "
        "[grade words](#grade-words), [assessment grades](#assessment-grades), [other choices](#other-choices)",
        "",
        "## The envelope",
        "",
        "Every posting carries three envelope fields beside its type's own fields:",
        "",
        "| field | type | required | meaning |",
        "|---|---|---|---|",
        "| `type` | text | yes | the event type, one of those below |",
        "| `client_id` | text, 1-200 characters | yes | the client's own identifier of this posting: its "
        "idempotency key, and how follow-ups name it (`target`) |",
        "| `actor` | text | yes | who posted it (a system or a person); the CLI supplies a default "
        "(`--actor`) |",
        "",
        "`recorded_at` is **not** a field of any posting: the ledger sets it, from its own clock, when it "
        "records the batch. A posting that carries `recorded_at` (or any field its type does not define) is "
        "refused. Dates are strings `YYYY-MM-DD`; true/false are JSON booleans (`\"true\"`/`\"false\"`/"
        "`\"yes\"`/`\"no\"` are also read); numbers are JSON numbers. An empty or null optional field is "
        "the same as an absent one.",
        "",
        f"The envelope field names are {', '.join(f'`{e}`' for e in ENVELOPE)}; every other key is a field "
        "of the posting's type.",
        "",
        "## Idempotency and conflicts",
        "",
        "- A **batch** (a file, a request, a `record` call) is recorded atomically: if any posting is "
        "invalid, nothing is written and every error is reported with its line, field, value and reason.",
        "- The `client_id` makes a posting idempotent. Posting the same `client_id` again with the same "
        "content (the type and the fields; not the actor) records nothing and reports it "
        "`already_recorded`: a client may safely resend a whole file after a failure.",
        "- The same `client_id` with **different** content is a **conflict**: the batch is refused. "
        "Nothing is ever updated in place: to change a recorded posting, post a `correction` (or "
        "`publication_date_supplied`, or `withdrawal`) with a new `client_id` whose `target` is the "
        "original's `client_id`.",
        "- A provider is registered once per URN (`provider_registered`); its inspections, compliance "
        "checks and lifecycle steps need the registration to have been recorded first (earlier in the "
        "same batch is enough).",
        "- Follow-ups, lifecycle steps and assessment steps reserve their own `client_id` too, so they are "
        "idempotent in the same way. A withdrawn posting cannot be corrected or withdrawn again.",
        "",
        "## The three clocks",
        "",
        "1. `occurred_on`: when the inspection, review, evaluation or data period happened (business date).",
        "2. `published_on`: when its report or figure was published (business date); it may be unknown at "
        "first and supplied later with `publication_date_supplied`. It may not be earlier than "
        "`occurred_on`.",
        "3. `recorded_at`: when the ledger learned it (transaction time), set by the ledger only.",
        "",
        "Every read takes `as_at` (the business date of the view) and `known_at` (only what had been "
        "recorded by then, default now). A correction recorded later never changes an earlier `known_at` "
        "view.",
        "",
        "## Field types",
        "",
        "| type | written as |",
        "|---|---|",
        "| date (YYYY-MM-DD) | a string such as `\"2011-07-12\"`; a real calendar date |",
        "| grade | one of the [grade words](#grade-words), case and surrounding spaces ignored |",
        "| group code | one of the 22 [inspection group codes](#inspection-groups) |",
        "| 3-digit LA code | the authority's code as a string, e.g. `\"886\"` (one of the 152 of 2011) |",
        "| text | a non-empty string |",
        "| integer / number | a JSON number (a string of digits is also read) |",
        "| true \\| false | a JSON boolean |",
        "| list of text | a JSON array of non-empty strings (may be empty) |",
        "| object of name to grade | a JSON object whose values are grade words |",
        "| object of field to new value | a JSON object of the target type's fields, in that type's format |",
        "| client id | the `client_id` of an earlier posting |",
        "",
        "## Event types",
        "",
    ]
    for family, title, intro in FAMILIES:
        kinds = [k for k in KINDS.values() if k.family == family]
        lines += [f"### {title}", "", intro, ""]
        for kind in kinds:
            lines += _kind_section(kind)
    lines += _allowed_values()
    return "\n".join(lines).rstrip("\n") + "\n"


def _allowed_values() -> list[str]:
    out = ["## Allowed values", "", "### Inspection groups", "",
           "Table 1 of the 2011 arrangements: 22 groups in 7 super groups; the first four super groups are "
           "universal services, the rest targeted.", "",
           "| group code | group | super group | universal or targeted |", "|---|---|---|---|"]
    for g in GROUPS:
        s = SUPER_GROUPS_BY_CODE[g.super_group]
        out.append(f"| `{g.code}` | {g.label} | {s.label} (`{s.code}`) | {'universal' if s.universal else 'targeted'} |")
    out += ["", "### Grade words", "",
            "One four-point scale. The 2011 guidance writes its third point 'satisfactory' for settings and "
            "'adequate' for services; the 2015 framework (and the 2018 MI files) write 'requires "
            "improvement'. All are accepted, lower-cased, and recorded as the point they name.", "",
            "| word accepted | recorded as |", "|---|---|"]
    for word, grade in GRADE_WORDS.items():
        out.append(f"| `{word}` | `{grade.value}` |")
    out += ["", "### Assessment grades", "",
            "Annex E / ¶62. Write the number or the word (with or without 'performs').", "",
            "| number | word |", "|---|---|"]
    for g in sorted(AssessmentGrade, key=lambda g: -g.value):
        out.append(f"| {g.value} | `{g.name.lower()}` ({g.label}) |")
    out += ["", "### Other choices", "", "| field | values |", "|---|---|"]
    seen: set[tuple[str, str]] = set()
    for kind in KINDS.values():
        for f in kind.fields:
            if "|" in f.type_doc and not f.type_doc.startswith(("true", "grade", "1-4")):
                key = (f.name, f.type_doc)
                if key not in seen:
                    seen.add(key)
                    values = ", ".join(f"`{v.strip()}`" for v in f.type_doc.split("|"))
                    out.append(f"| `{f.name}` ({kind.name}) | {values} |")
    return out + [""]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args and args[0] == "-":
        sys.stdout.write(text)
        return
    path = Path(args[0]) if args else DOC_PATH
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
