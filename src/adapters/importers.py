"""Importers behind `csa import FILE [--format jsonl|mi-csv|export] [--skip-invalid]
[--rejects PATH] [--actor A]` (docs/importing.md, ADR 0004).

- `jsonl`: one posting of the integration format per line (blank lines ignored).
- `mi-csv`: Ofsted's management-information CSV (adapters.mi_csv).
- `export`: a file written by `csa export`, restored into an empty store.

An import is all or nothing: a file with any invalid row writes nothing and
reports every bad row by line, field and reason (`InvalidImport`). With
`skip_invalid` the valid rows are recorded and the others written to a rejects
file (JSON Lines: {"line", "row", "errors"}). Postings are idempotent by client
id: importing a file again records nothing new; the same client id with other
content raises `ConflictingPosting`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters import mi_csv
from adapters.ledger import EXPORT_HEADER, Ledger, RecordResult
from domain.errors import ConflictingPosting, DomainError, FieldError, InvalidEvidence
from domain.handlers import Batch
from domain.postings import Posting, canonical

FORMATS = ("jsonl", "mi-csv", "export")
CHUNK = 1000  # rows parsed (and URNs looked up) at a time
MAX_BATCH = 200_000  # postings saved in one transaction; larger files are saved in several
MAX_RETRIES = 10  # skip-invalid: rounds of removing rows refused against the ledger's state
PROGRESS_EVERY = 500

Progress = Callable[[dict[str, int]], None]


class ImportFormatError(DomainError):
    """The file is in no format the importer reads, or not in the format asked for."""


class InvalidImport(InvalidEvidence):
    """The file has invalid rows; nothing was written. `report` has the details."""

    def __init__(self, errors: list[FieldError], report: ImportReport):
        super().__init__(errors)
        self.report = report


@dataclass
class ImportReport:
    path: str
    format: str
    rows: int = 0  # data rows read (JSON lines, CSV rows, export events)
    recorded: int = 0  # postings recorded (events restored, for an export)
    already_recorded: int = 0  # postings the ledger already held with the same content
    rejected: int = 0  # rows refused (distinct lines)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)  # MI rows not recordable, by reason
    errors: list[FieldError] = field(default_factory=list)
    rejects_path: str | None = None
    position: int | None = None  # the log position after the import

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "recorded": self.recorded, "already_recorded": self.already_recorded,
                "rejected": self.rejected, "skipped": self.skipped}


# --- reading ------------------------------------------------------------------


class _Lines:
    """Text lines of a UTF-8 file (BOM removed), counting the bytes read for progress."""

    def __init__(self, path: Path):
        self.path = path
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                self.bytes += len(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ImportFormatError(f"{self.path}: line {n} is not UTF-8 text ({e.reason})") from None
                yield text.removeprefix("\ufeff") if n == 1 else text


def detect_format(path: str | Path) -> str:
    """'export', 'jsonl' or 'mi-csv' from the file's first lines; ImportFormatError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    first: list[str] = []
    for line in _Lines(path):
        if line.strip() or first:
            first.append(line)
        if len(first) >= 2:
            break
    if not first:
        raise ImportFormatError(f"{path}: the file is empty")
    head = first[0].strip()
    if head.startswith("{"):
        try:
            obj = json.loads(head)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return "export" if obj.get("format") == EXPORT_HEADER else "jsonl"
    rows = list(csv.reader(first))
    if len(rows) == 2 and mi_csv.is_mi_header(rows[0], rows[1]):
        return "mi-csv"
    raise ImportFormatError(
        f"{path}: format not recognised: expected JSON Lines (a JSON object on the first line), "
        "a csa export (header line {\"format\": \"csa-ledger-export\"}) or Ofsted's MI CSV "
        "(row 1 'Provider information,...', row 2 the column names incl. URN, Provision type, "
        "Local authority, Inspection date); give --format to say which")


@dataclass
class _Item:
    """One row of the source: its raw postings, or its errors, or why it is skipped."""

    line: int
    row: Any  # as read: the JSON value, the malformed text, or the CSV row
    raws: list[dict[str, Any]]
    errors: list[FieldError]
    skipped: str | None = None


def _jsonl_items(lines: Iterable[str]) -> Iterator[_Item]:
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield _Item(n, text.rstrip("\r\n"), [],
                        [FieldError("(line)", text.strip()[:80], f"malformed JSON: {e.msg} at column {e.colno}", n)])
            continue
        # parse_posting reports a non-object itself ("must be a JSON object").
        yield _Item(n, obj, [obj], [])


def _mi_items(ledger: Ledger, lines: Iterable[str]) -> Iterator[_Item]:
    mapper = mi_csv.MiMapper(ledger.authorities, ledger.registered_urns)
    try:
        rows = mi_csv.read_rows(lines)
        chunk: list[mi_csv.MiRow] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                yield from _mapped(mapper.map_rows(chunk))
                chunk = []
        if chunk:
            yield from _mapped(mapper.map_rows(chunk))
    except mi_csv.MiLayoutError as e:
        raise ImportFormatError(f"not an Ofsted MI CSV: {e}") from None


def _mapped(rows: list[mi_csv.MappedRow]) -> Iterator[_Item]:
    for m in rows:
        yield _Item(m.line, dict(m.original), m.raws, m.errors, None if m.errors else m.skipped)


def _chunks(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- importing ------------------------------------------------------------------


def import_file(ledger: Ledger, path: str | Path, *, fmt: str | None = None, skip_invalid: bool = False,
                rejects_path: str | Path | None = None, actor: str = "import",
                progress: Progress | None = None) -> ImportReport:
    """Import one file (see the module's doc). Returns the report; raises `InvalidImport`
    (nothing written) when the file has invalid rows and `skip_invalid` is off,
    `ConflictingPosting` when a client id was recorded before with other content,
    and `ImportFormatError` when the file cannot be read as the format."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {fmt!r}: give one of {', '.join(FORMATS)}")
    report = ImportReport(str(path), fmt)
    lines = _Lines(path)
    if fmt == "export":
        return _import_export(ledger, lines, report, progress)

    items = _jsonl_items(lines) if fmt == "jsonl" else _mi_items(ledger, lines)
    postings: list[Posting] = []
    errors: list[FieldError] = []
    skipped: Counter[str] = Counter()
    last_progress = 0
    for chunk in _chunks(items, CHUNK):
        for it in chunk:
            errors += it.errors
            if it.skipped and not it.errors:
                skipped[it.skipped] += 1
        parsed, parse_errors = ledger.parse([(it.line, raw) for it in chunk if not it.errors for raw in it.raws],
                                            default_actor=actor)
        postings += parsed
        errors += parse_errors
        report.rows += len(chunk)
        if progress and report.rows - last_progress >= PROGRESS_EVERY:
            last_progress = report.rows
            progress(_progress("reading", report, lines, len(postings), len(errors)))
    report.skipped_by_reason = dict(skipped)

    bad = {e.line for e in errors}
    if errors and not skip_invalid:
        # Also find what the ledger's state would refuse, without writing anything.
        errors += _dry_run(ledger, [p for p in postings if p.line not in bad])
        _fail(report, errors, path, rejects_path)
    postings = [p for p in postings if p.line not in bad]

    if progress:
        progress(_progress("saving", report, lines, len(postings), len(errors)))
    for _ in range(MAX_RETRIES):
        try:
            results = _save(ledger, postings)
            break
        except ConflictingPosting:
            raise
        except InvalidEvidence as e:
            conflicts = [x for x in e.errors if _is_conflict(x)]
            refused = [x for x in e.errors if not _is_conflict(x)]
            if not skip_invalid:
                _fail(report, errors + e.errors, path, rejects_path)
            if conflicts:
                raise ConflictingPosting(conflicts) from None
            lines_refused = {x.line for x in refused}
            if not lines_refused or None in lines_refused:
                raise
            errors += refused
            postings = _without(postings, lines_refused)
    else:
        raise InvalidImport(errors, report)

    report.recorded = sum(r.recorded for r in results)
    report.already_recorded = sum(r.already_recorded for r in results)
    report.position = results[-1].position if results else ledger.projector.log_position()
    report.errors = errors
    report.rejected = len({e.line for e in errors})
    if errors:
        report.rejects_path = str(_write_rejects(path, fmt, errors, rejects_path))
    if progress:
        progress(_progress("done", report, lines, len(postings), len(errors)))
    return report


def _progress(stage: str, report: ImportReport, lines: _Lines, postings: int, errors: int) -> dict[str, Any]:
    return {"stage": stage, "bytes": lines.bytes, "rows": report.rows, "postings": postings, "errors": errors,
            "recorded": report.recorded, "already_recorded": report.already_recorded}


def _is_conflict(e: FieldError) -> bool:
    # Batch.stage folds conflicts into InvalidEvidence when there are other errors too.
    return e.field == "client_id" and "different content" in e.reason


def _without(postings: list[Posting], lines: set[int | None]) -> list[Posting]:
    """Drop the postings of refused lines (a row is refused whole). Postings that
    needed one of them (an inspection of a provider whose registration was refused)
    are refused by the next round, with their own error."""
    return [p for p in postings if p.line not in lines]


def _dry_run(ledger: Ledger, postings: list[Posting]) -> list[FieldError]:
    """Stage postings on the ledger's aggregates without saving: the errors state would give."""
    if not postings:
        return []
    try:
        batch = Batch(ledger.app, ledger.clock(), known_la_codes=ledger.authorities.codes)
    except TypeError:  # a Batch that does not check corrected la_codes
        batch = Batch(ledger.app, ledger.clock())
    try:
        batch.stage(postings)
    except (InvalidEvidence, ConflictingPosting) as e:
        return list(e.errors)
    return []


def _save(ledger: Ledger, postings: list[Posting]) -> list[RecordResult]:
    """One transaction for the file when it fits in MAX_BATCH postings (then atomic)."""
    if not postings:
        return []
    return [ledger.record_postings(postings[i:i + MAX_BATCH]) for i in range(0, len(postings), MAX_BATCH)]


def _fail(report: ImportReport, errors: list[FieldError], path: Path, rejects_path: str | Path | None) -> None:
    report.errors = errors
    report.rejected = len({e.line for e in errors})
    if rejects_path is not None:
        report.rejects_path = str(_write_rejects(path, report.format, errors, rejects_path))
    raise InvalidImport(errors, report)


def default_rejects_path(path: Path) -> Path:
    """In the current directory, never beside the input (which may be read-only shared data)."""
    return Path.cwd() / (path.name + ".rejects.jsonl")


def _write_rejects(path: Path, fmt: str, errors: list[FieldError], rejects_path: str | Path | None) -> Path:
    """JSON Lines, one per refused line in file order: {"line", "row", "errors": [{field, value, reason}]}.
    The row is re-read from the file, as it was there (a JSON value, the text of a
    malformed line, or the CSV row keyed by the file's own column names)."""
    out = Path(rejects_path) if rejects_path is not None else default_rejects_path(path)
    by_line: dict[int | None, list[FieldError]] = {}
    for e in errors:
        by_line.setdefault(e.line, []).append(e)
    rows: dict[int, Any] = {}
    wanted = {n for n in by_line if n is not None}
    if wanted:
        if fmt == "jsonl":
            for n, text in enumerate(_Lines(path), start=1):
                if n in wanted:
                    try:
                        rows[n] = json.loads(text)
                    except json.JSONDecodeError:
                        rows[n] = text.rstrip("\r\n")
        else:
            for row in mi_csv.read_rows(_Lines(path)):
                if row.line in wanted:
                    rows[row.line] = dict(row.original)
    with out.open("w", encoding="utf-8") as fh:
        for n in sorted(by_line, key=lambda x: (x is None, x or 0)):
            fh.write(json.dumps({"line": n, "row": rows.get(n) if n is not None else None,
                                 "errors": [{"field": e.field, "value": canonical(e.value), "reason": e.reason}
                                            for e in by_line[n]]},
                                ensure_ascii=False, default=str) + "\n")
    return out


def _import_export(ledger: Ledger, lines: _Lines, report: ImportReport, progress: Progress | None) -> ImportReport:
    it = iter(lines)
    header = None
    for text in it:
        if text.strip():
            header = text
            break
    try:
        head = json.loads(header) if header else None
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("format") != EXPORT_HEADER:
        raise ImportFormatError(f"{report.path}: not a csa export: the first line must be "
                                f"{{\"format\": \"{EXPORT_HEADER}\", ...}}")
    if head.get("version") != 1:
        raise ImportFormatError(f"{report.path}: export version {head.get('version')!r} is not supported (1 is)")

    def events() -> Iterator[str]:
        for text in it:
            if text.strip():
                report.rows += 1
                if progress and report.rows % PROGRESS_EVERY == 0:
                    progress(_progress("restoring", report, lines, report.rows, 0))
                yield text

    report.recorded = ledger.restore(events())
    report.position = ledger.projector.log_position()
    if progress:
        progress(_progress("done", report, lines, report.rows, 0))
    return report
