"""Importers behind `csa import FILE [--format jsonl|mi-csv|export] [--skip-invalid]
[--rejects PATH] [--actor A]` (docs/importing.md, ADR 0004).

- `jsonl`: one posting of the integration format per line (blank lines ignored).
- `mi-csv`: Ofsted's management-information CSV (adapters.mi_csv).
- `export`: a file written by `csa export`, restored into an empty store.

An import is all or nothing: a file with any invalid row writes nothing and
reports every bad row by line, field and reason (`InvalidImport`). The whole file
is staged first (ADR 0020), its events kept in a scratch file; a valid file is then
written in transactions of `CHUNK_POSTINGS` postings, so a crash mid-write leaves
whole chunks that importing the file again completes (the rest is recorded, the
written part is reported `already_recorded`). With
`skip_invalid` the valid rows are recorded and the others written to a rejects
file (JSON Lines: {"line", "row", "errors"}). Postings are idempotent by client
id: importing a file again records nothing new; the same client id with other
content raises `ConflictingPosting`.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import logging
import multiprocessing
import pickle
import queue
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from adapters import mi_csv
from adapters.eventstore import EventEncoder, Scratch, StagingSource
from adapters.import_beside import BesideProjection
from adapters.ledger import EXPORT_HEADER, WRITE_ATTEMPTS, Ledger, parse_raws
from domain.errors import ConflictingPosting, DomainError, FieldError, InvalidEvidence
from domain.handlers import Batch, aggregates_read
from domain.postings import Posting, canonical, posting_fields, posting_from_fields
from projections import page_writer
from projections.projector import has_long_integer

FORMATS = ("jsonl", "mi-csv", "export")
CHUNK = 1000  # rows parsed (and URNs looked up) at a time
CHUNK_POSTINGS = 50_000  # postings staged together, and later written in one transaction
MAX_RETRIES = 10  # skip-invalid: rounds of removing rows refused against the ledger's state
PROGRESS_EVERY = 500

Progress = Callable[[dict[str, int]], None]

log = logging.getLogger("csa.import")


class ImportFormatError(DomainError):
    """The file is in no format the importer reads, or not in the format asked for."""


class InvalidImport(InvalidEvidence):
    """The file has invalid rows; nothing was written. `report` has the details."""

    def __init__(self, errors: list[FieldError], report: ImportReport):
        super().__init__(errors)
        self.report = report


class ImportConflict(DomainError):
    """The import could not be written because other writers kept changing what it touches."""


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
        for n, raw in self.numbered():
            yield self.text(n, raw)

    def numbered(self) -> Iterator[tuple[int, bytes]]:
        """Each line's number and bytes, the first's byte order mark removed."""
        with self.path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                self.bytes += len(raw)
                yield n, raw.removeprefix(_BOM) if n == 1 else raw

    def text(self, n: int, raw: bytes) -> str:
        """Line `n`'s text; ImportFormatError if it is not UTF-8."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ImportFormatError(f"{self.path}: line {n} is not UTF-8 text ({e.reason})") from None


_BOM = "\ufeff".encode()


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


def _jsonl_items(lines: _Lines) -> Iterator[_Item]:
    """Each line's JSON value, or its error. orjson reads a line's bytes wherever it gives exactly
    the value `json.loads` gives its text (~0.8 against ~2.3 us a line of the national set, issue
    5): not where a number may be an integer past 64 bits, which orjson reads as a float
    (`has_long_integer`, as the projector's codec checks), nor where orjson refuses the line (NaN
    or Infinity, a lone surrogate, a number past a double's range, malformed JSON, text not UTF-8,
    a blank line). Those lines take the text and `json.loads`, as every line did: the same value,
    the same error, or the same ImportFormatError."""
    for n, raw in lines.numbered():
        if not has_long_integer(b":" + raw):
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
            else:
                yield _Item(n, obj, [obj], [])
                continue
        text = lines.text(n, raw)
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
                progress: Progress | None = None, project: bool = True,
                chunk_postings: int | None = None, beside: bool = True, rollback_journal: bool = True) -> ImportReport:
    """Import one file (see the module's doc). Returns the report; raises `InvalidImport`
    (nothing written) when the file has invalid rows and `skip_invalid` is off,
    `ConflictingPosting` when a client id was recorded before with other content,
    and `ImportFormatError` when the file cannot be read as the format.

    Two passes (ADR 0020): the whole file is parsed and staged chunk by chunk against
    the ledger plus what it staged so far, its events kept in a scratch file; only a
    file found valid is then written, one transaction per chunk of postings.

    `beside`: a first load into an empty SQLite store builds the read model in a second
    process while it stages, and adopts it once the log is written (ADR 0027); with it off,
    or where that does not apply, the read model is projected after the write.

    `rollback_journal`: a first load into an empty SQLite store that no other connection has
    open is written with the store out of WAL mode, each page once (ADR 0040); with it off, or
    where that does not apply, through the WAL."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {fmt!r}: give one of {', '.join(FORMATS)}")
    report = ImportReport(str(path), fmt)
    lines = _Lines(path)
    if fmt == "export":
        return _import_export(ledger, lines, report, progress)

    with _gc_paused():
        return _import_postings(ledger, path, fmt, report, skip_invalid, rejects_path, actor, progress, project,
                                chunk_postings or CHUNK_POSTINGS, beside and project, rollback_journal)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while importing, on again after (however it ends).
    Staging allocates millions of small objects that live for a chunk (postings,
    aggregates, events) and form no cycles; with the collector on, its generational
    passes over them cost more than the staging itself (measured: 65 -> 20 us a posting).
    The projector's catch-up after a written chunk (SQLAlchemy makes cycles) is followed
    by a young-generation collection; what staging leaves is collected once it is on again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _import_postings(ledger: Ledger, path: Path, fmt: str, report: ImportReport, skip_invalid: bool,
                     rejects_path: str | Path | None, actor: str, progress: Progress | None, project: bool,
                     size: int, beside: bool, rollback_journal: bool) -> ImportReport:
    excluded: set[int | None] = set()  # lines refused whole (skip_invalid)
    written = 0  # postings recorded by earlier attempts (their chunks were committed)
    for _attempt in range(WRITE_ATTEMPTS):
        lines = _Lines(path)
        staged = _stage_file(ledger, fmt, lines, actor, size, excluded, report, progress, beside)
        try:
            refused_whole: list[FieldError] = []
            rounds = 0
            while skip_invalid and staged.partial_lines:
                rounds += 1
                if rounds > MAX_RETRIES:
                    raise InvalidImport(refused_whole + staged.errors, report)
                # A refused line whose other postings were staged: refuse it whole and
                # stage again (what depended on its postings is refused in its turn).
                refused_whole += [e for e in staged.errors if e.line in staged.partial_lines]
                excluded |= staged.partial_lines
                staged.close()
                staged = _stage_file(ledger, fmt, _Lines(path), actor, size, excluded, report, progress, beside)
            errors = refused_whole + staged.errors
            if (errors or staged.conflicts) and _attempt < WRITE_ATTEMPTS - 1 \
                    and ledger.app.log_head() != staged.head:
                continue  # another writer committed while this staged: stage again on what the ledger holds
            if staged.conflicts and not errors:
                raise ConflictingPosting(staged.conflicts)
            if errors and not skip_invalid:
                _fail(report, errors + staged.conflicts, path, rejects_path)
            if staged.conflicts:
                raise ConflictingPosting(staged.conflicts)
            if progress:
                progress(_progress("saving", report, lines, staged.postings, len(errors)))
            done = _write_staged(ledger, staged, project, rollback_journal)
        finally:
            staged.close()
        if done == len(staged.chunks):
            break
        # Another writer changed aggregates this import read or writes: what is written
        # stays (whole chunks of postings); stage the rest again on the ledger as it is now.
        written += sum(c.recorded for c in staged.chunks[:done])
    else:
        raise ImportConflict(f"{path}: other writers kept changing the aggregates this file touches; "
                             f"{written} postings were recorded; import the file again to record the rest")

    report.recorded = staged.recorded + written
    report.already_recorded = staged.already_recorded - written
    report.position = ledger.projector.log_position()
    report.errors = errors
    report.rejected = len({e.line for e in errors})
    if errors:
        report.rejects_path = str(_write_rejects(path, fmt, errors, rejects_path))
    if progress:
        progress(_progress("done", report, lines, staged.postings, len(errors)))
    return report


@dataclass
class _Chunk:
    last: int  # the scratch position of its last event
    recorded: int  # postings it records


@dataclass
class _Staged:
    """What the first pass found: the staged events (in the scratch), by chunk, and every error."""

    scratch: Scratch
    source: StagingSource
    head: int  # the log head the staging read
    encoder: EventEncoder
    chunks: list[_Chunk] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    conflicts: list[FieldError] = field(default_factory=list)
    partial_lines: set[int | None] = field(default_factory=set)
    postings: int = 0
    recorded: int = 0
    already_recorded: int = 0
    beside: BesideProjection | None = None  # the read model built meanwhile (ADR 0027)

    def close(self) -> None:
        if self.beside is not None:
            self.beside.close()
        self.scratch.close()


def _stage_file(ledger: Ledger, fmt: str, lines: _Lines, actor: str, size: int, excluded: set[int | None],
                report: ImportReport, progress: Progress | None, beside: bool = False) -> _Staged:
    """Pass 1: parse and stage the whole file, writing nothing to the ledger (but, with
    `beside`, to a read model of the staged events in a second process)."""
    report.rows = 0
    head = ledger.app.log_head()
    scratch = Scratch()
    staged = _Staged(scratch, StagingSource(ledger.app, scratch, head), head, EventEncoder(ledger.app.mapper))
    if beside:
        try:
            staged.beside = BesideProjection.start(ledger, scratch, lines.path)
        except BaseException:
            staged.close()
            raise
    parse_errors: list[FieldError] = []
    skipped: Counter[str] = Counter()
    pending: list[Posting] = []
    last_progress = 0
    try:
        for part in _parsed(ledger, fmt, lines, actor, excluded, size):
            parse_errors += part.errors
            skipped.update(part.skipped)
            pending += part.postings
            report.rows += part.rows
            if part.bytes is not None:
                lines.bytes = part.bytes
            while len(pending) >= size:
                _stage_chunk(ledger, staged, pending[:size])
                pending = pending[size:]
            if progress and report.rows - last_progress >= PROGRESS_EVERY:
                last_progress = report.rows
                progress(_progress("reading", report, lines, staged.postings + len(pending),
                                   len(parse_errors) + len(staged.errors)))
        if pending:
            _stage_chunk(ledger, staged, pending)
        if staged.beside is not None:
            staged.beside.end()
    except BaseException:
        staged.close()
        raise
    report.skipped_by_reason = dict(skipped)
    staged.errors = parse_errors + staged.errors
    return staged


# --- parsing, in this process or (large JSON Lines files) in a second one -----------


@dataclass
class _Part:
    """CHUNK rows of the file, parsed: the postings of its valid, not excluded rows, and
    every error of its rows (those found reading them, then those found parsing them)."""

    rows: int
    postings: list[Posting]
    errors: list[FieldError]
    skipped: dict[str, int]  # MI rows not recordable, by reason
    bytes: int | None = None  # bytes of the file read so far (set when parsed in a second process)


def _parse_part(chunk: list[_Item], excluded: set[int | None], actor: str,
                codes: frozenset[str] | None) -> _Part:
    errors: list[FieldError] = []
    skipped: Counter[str] = Counter()
    raws = []
    for it in chunk:
        errors += it.errors
        if it.skipped and not it.errors:
            skipped[it.skipped] += 1
        if not it.errors and it.line not in excluded:
            raws += [(it.line, raw) for raw in it.raws]
    parsed, errs = parse_raws(raws, default_actor=actor, known_la_codes=codes)
    errors += errs
    bad = {e.line for e in errs}
    return _Part(len(chunk), [p for p in parsed if p.line not in bad] if bad else parsed, errors, skipped)


PARALLEL_MIN_BYTES = 4 << 20  # a JSON Lines file at least this large is parsed in a second process
PARTS_PER_MESSAGE = 5  # parts the parsing process sends at a time


def _parsed(ledger: Ledger, fmt: str, lines: _Lines, actor: str, excluded: set[int | None],
            size: int) -> Iterator[_Part]:
    codes = ledger.authorities.codes
    if fmt == "jsonl" and _parallel_parsing(lines.path):
        yield from _parsed_in_second_process(lines.path, actor, excluded, codes, size)
        return
    items = _jsonl_items(lines) if fmt == "jsonl" else _mi_items(ledger, lines)
    for chunk in _chunks(items, CHUNK):
        yield _parse_part(chunk, excluded, actor, codes)


def _parallel_parsing(path: Path) -> bool:
    # fork: the child starts at once with the modules already imported, and only reads
    # the file and parses (it touches none of the parent's connections); not on
    # platforms whose fork is unsafe or missing.
    return (sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
            and path.stat().st_size >= PARALLEL_MIN_BYTES)


def _parsed_in_second_process(path: Path, actor: str, excluded: set[int | None],
                              codes: frozenset[str] | None, size: int) -> Iterator[_Part]:
    """The parts of a JSON Lines file read, parsed and content-hashed by a child process
    while this one stages (the machine's second core). The same parts, errors and
    postings as parsing here, in file order. A thread takes the child's messages off the
    pipe as they come (still pickled, ~250 bytes a posting) into a queue of about one
    staging chunk, so the child parses the next chunk while this process stages one; an
    error reading the file (not UTF-8) is raised here as it would be."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_parse_in_child, args=(sender, path, actor, excluded, codes), daemon=True)
    child.start()
    sender.close()
    messages: queue.Queue[bytes | None] = queue.Queue(maxsize=size // (CHUNK * PARTS_PER_MESSAGE) + 2)

    def take() -> None:
        try:
            while True:
                messages.put(receiver.recv_bytes())
        except (EOFError, OSError):
            messages.put(None)  # the child closed its end: after its last message, or it died

    taker = threading.Thread(target=take, name="csa-import-parts", daemon=True)
    taker.start()
    try:
        while True:
            data = messages.get()
            if data is None:
                child.join()
                raise RuntimeError(f"{path}: the parsing process ended unexpectedly (exit code {child.exitcode})")
            status, payload = pickle.loads(data)
            if status == "error":
                raise payload
            for sent in payload:
                yield _received(sent)
            if status == "end":
                break
    finally:
        if child.is_alive():
            child.terminate()
        while taker.is_alive():  # let the taker see the end of the pipe
            with contextlib.suppress(queue.Empty):
                while True:
                    messages.get_nowait()
            taker.join(0.05)
        receiver.close()
        child.join()


def _parse_in_child(sender: Any, path: Path, actor: str, excluded: set[int | None],
                    codes: frozenset[str] | None) -> None:
    try:
        lines = _Lines(path)
        batch: list[_Part] = []
        for chunk in _chunks(_jsonl_items(lines), CHUNK):
            part = _parse_part(chunk, excluded, actor, codes)
            part.bytes = lines.bytes
            batch.append(_sent(part))
            if len(batch) >= PARTS_PER_MESSAGE:
                sender.send_bytes(page_writer.dumps(("part", batch)))
                batch = []
        sender.send_bytes(page_writer.dumps(("end", batch)))
    except BaseException as e:  # noqa: BLE001  # reported to the parent, raised there
        try:
            message = pickle.dumps(("error", e))
        except Exception:  # noqa: BLE001
            message = pickle.dumps(("error", RuntimeError(f"{path}: parsing failed: {e!r}")))
        sender.send_bytes(message)
    finally:
        sender.close()


def _sent(part: _Part) -> tuple:
    """A part as the parsing process sends it (ADR 0042): each posting as plain values with its
    content hash, computed there (`posting_fields`); the message is pickled without the memo
    (`page_writer.dumps`): a message of five 1,000-row parts pickled about 3 times as fast as the
    `Posting` objects with the memo, which indexed every text, date and dict (the values hold no
    object twice that it would matter to share), and unpickled as fast."""
    return part.rows, [posting_fields(p) for p in part.postings], part.errors, dict(part.skipped), part.bytes


def _received(sent: tuple) -> _Part:
    """The part `_sent` gave: the same rows, postings (their hashes kept), errors and skipped rows."""
    rows, postings, errors, skipped, nbytes = sent
    return _Part(rows, [posting_from_fields(*f) for f in postings], errors, skipped, nbytes)


def _stage_chunk(ledger: Ledger, staged: _Staged, postings: list[Posting]) -> None:
    """Stage one chunk on the ledger's aggregates plus the ones staged before; its
    events go to the scratch (those of its valid postings, even if others are refused,
    so that later chunks see them and every error of the file is found)."""
    source = staged.source
    source.prefetch(i for p in postings for i in aggregates_read(p))
    batch = Batch(source, ledger.clock(), known_la_codes=ledger.authorities.codes)
    try:
        batch.stage(postings)
    except (InvalidEvidence, ConflictingPosting):
        pass
    staged.errors += batch.errors
    staged.conflicts += batch.conflicts
    refused = {e.line for e in batch.errors}
    recorded = sum(o.status == "recorded" for o in batch.outcomes)
    if refused:
        staged.partial_lines |= refused & {o.line for o in batch.outcomes}
    staged.postings += len(postings)
    staged.recorded += recorded
    staged.already_recorded += len(batch.outcomes) - recorded
    if batch.events:
        last = staged.scratch.append_rows(staged.encoder.rows(batch.events))
        staged.chunks.append(_Chunk(last, recorded))
        if staged.beside is not None:
            staged.beside.staged(last)
    source.carry(batch.staged)


def _write_staged(ledger: Ledger, staged: _Staged, project: bool, rollback_journal: bool = True) -> int:
    """Pass 2: append the staged chunks to the log, one transaction each. Returns how many
    were written: all of them, unless another writer changed an aggregate this import
    reads or writes (then the caller stages the rest again)."""
    first_load = staged.head == 0 and len(staged.chunks) > 1 and ledger.app.appends_whole_first_load
    # A first load into an empty SQLite store that no other connection has open writes its log
    # and read model with the store out of WAL mode, each page once (ADR 0040); else through the WAL.
    held = ledger.rollback_journal() if first_load and rollback_journal else contextlib.nullcontext(False)
    with held as out_of_wal:
        return _write_chunks(ledger, staged, project, first_load, out_of_wal)


def _write_chunks(ledger: Ledger, staged: _Staged, project: bool, first_load: bool, out_of_wal: bool) -> int:
    head, first = staged.head, 1
    checkpointing: threading.Thread | None = None
    written = False
    try:
        if first_load:
            # A first load (ADR 0029): the whole scratch in one transaction, copied as it is.
            # If another writer came first, the chunks below step over it or stage again.
            # When a read model built beside is to be adopted next, the log's pages are
            # checkpointed from the WAL into the file by a second thread, while this one waits
            # for that read model and copies it (ADR 0031), rather than before; with the store
            # out of WAL mode there is nothing to checkpoint.
            overlap = project and staged.beside is not None and not out_of_wal
            if ledger.app.append_staged(staged.scratch, 1, staged.chunks[-1].last, 0, checkpoint=not overlap):
                ledger.positions_moved()
                first = staged.chunks[-1].last + 1
                head = staged.chunks[-1].last
                if overlap:
                    thread = threading.Thread(target=_checkpoint, args=(ledger,), name="csa-import-checkpoint",
                                              daemon=True)
                    thread.start()
                    checkpointing = thread
        done = _write_rest(ledger, staged, project, head, first)
        written = True
        return done
    finally:
        if checkpointing is not None:
            checkpointing.join()
            if written:
                _checkpoint(ledger)  # what the adoption's own checkpoint left while the other one ran


def _checkpoint(ledger: Ledger) -> None:
    # The pages are committed whatever happens here. What a checkpoint cannot copy (a reader
    # still on an older snapshot, or it fails) is left to the store's next one: any commit
    # past the WAL's threshold, or the last connection closing.
    try:
        busy, frames, copied = ledger.app.checkpoint()
    except sqlite3.Error as e:
        log.warning("checkpointing the store after the import's append failed (%s); its next checkpoint will", e)
        return
    if busy or copied < frames:
        log.info("the store's checkpoint after the import copied %s of %s WAL pages%s; its next checkpoint "
                 "copies the rest", copied, frames, " (another checkpoint was running)" if busy else "")


def _write_rest(ledger: Ledger, staged: _Staged, project: bool, head: int, first: int) -> int:
    """The chunks not yet appended (from position `first`, the log at `head`), then the read model."""
    for n, chunk in enumerate(staged.chunks):
        if chunk.last < first:
            continue
        while not ledger.app.append_staged(staged.scratch, first, chunk.last, head):
            now = ledger.app.log_head()
            if now == head or not staged.source.unaffected_by(head, now):
                return n
            head = now  # others wrote, but nothing this import touches: append after them
        ledger.positions_moved()
        head += chunk.last - first + 1
        first = chunk.last + 1
    if project:
        # Once, after the last chunk: the read model built beside the staging is adopted if
        # the store is still as it was (ADR 0027); then, or else, the projector catches up,
        # from an empty read model with its bulk path over the whole import (secondary indexes
        # built once, at the end) rather than maintaining them chunk by chunk. The read model
        # may lag the log at any time (ADR 0002); reads that need the import wait for its position.
        if staged.beside is not None and staged.beside.adopt():
            ledger.positions_moved()
        ledger.catch_up()
        gc.collect(1)  # the automatic collector is off (_gc_paused)
    return len(staged.chunks)


def _progress(stage: str, report: ImportReport, lines: _Lines, postings: int, errors: int) -> dict[str, Any]:
    return {"stage": stage, "bytes": lines.bytes, "rows": report.rows, "postings": postings, "errors": errors,
            "recorded": report.recorded, "already_recorded": report.already_recorded}


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
