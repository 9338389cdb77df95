"""`csa`: the command-line tool of CSA Ledger.

Every command reads the store from CSA_DATABASE_URL (default: an SQLite file in
./var). Errors name the field, the value and the reason, and exit non-zero.
"""

from __future__ import annotations

import getpass
import json
import signal
import sys
import tempfile
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from adapters.cli_tokens import tokens_app
from adapters.settings import get_settings
from domain.authorities import UnknownAuthority
from domain.errors import ConflictingPosting, DomainError, FieldError, InvalidEvidence
from domain.framework import LATEST_YEAR
from domain.points import known_at_from_text
from domain.postings import KINDS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CSA Ledger: the evidence ledger of Ofsted's children's services assessment.")
app.add_typer(tokens_app, name="tokens")

EXIT_INVALID = 2
EXIT_CONFLICT = 3
EXIT_DIFFERENT = 4


def _ledger():
    from adapters.ledger import Ledger

    s = get_settings()
    return Ledger(s.database_url, projector_batch=s.projector_batch)


def _default_actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # noqa: BLE001
        return "cli"


def _fail(errors: list[FieldError], title: str, code: int) -> None:
    typer.echo(f"{title}: {len(errors)} error(s); nothing was written.", err=True)
    errors = sorted(errors, key=lambda e: (e.line is None, e.line or 0))
    for e in errors[:200]:
        typer.echo(f"  {e}", err=True)
    if len(errors) > 200:
        typer.echo(f"  … and {len(errors) - 200} more", err=True)
    raise typer.Exit(code)


def _guard(fn):
    """Map domain refusals to clear messages and exit codes (never a traceback)."""
    try:
        return fn()
    except ConflictingPosting as e:
        _fail(e.errors, "Conflict", EXIT_CONFLICT)
    except InvalidEvidence as e:
        _fail(e.errors, "Invalid", EXIT_INVALID)
    except (DomainError, UnknownAuthority, ValueError) as e:
        typer.echo(f"Refused: {e}", err=True)
        raise typer.Exit(EXIT_INVALID) from None


def _json_default(o: Any) -> Any:
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    return str(o)


@app.command()
def record(
    type: Annotated[str, typer.Argument(help="event type, e.g. provider_inspection (see docs/events.md)")],  # noqa: A002
    fields: Annotated[list[str] | None, typer.Argument(help="field=value pairs; JSON values allowed (e.g. priority_actions='[\"x\"]')")] = None,
    client_id: Annotated[str | None, typer.Option(help="your own id for this posting; default: derived from the content")] = None,
    actor: Annotated[str | None, typer.Option(help="who posts it; default cli:$USER")] = None,
) -> None:
    """Record one posting of any type."""
    raw: dict[str, Any] = {"type": type}
    for pair in fields or []:
        if "=" not in pair:
            _fail([FieldError(pair, pair, "expected field=value")], "Invalid", EXIT_INVALID)
        k, v = pair.split("=", 1)
        try:
            raw[k] = json.loads(v) if v[:1] in "[{" or v in ("true", "false") else v
        except json.JSONDecodeError:
            raw[k] = v
    if type in KINDS and client_id is None:
        from domain.postings import content_hash

        client_id = "cli:" + content_hash(type, {k: v for k, v in raw.items() if k != "type"})
    raw["client_id"] = client_id
    raw["actor"] = actor or _default_actor()

    def run():
        led = _ledger()
        result = led.record([raw])
        o = result.outcomes[0]
        typer.echo(f"{o.status}: {o.type} client_id={o.client_id} (log position {result.position})")

    _guard(run)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines, Ofsted MI CSV, or a csa export")],
    format: Annotated[str | None, typer.Option("--format", help="jsonl | mi-csv | export (default: detected)")] = None,  # noqa: A002
    skip_invalid: Annotated[bool, typer.Option(help="record the valid rows; write the rejects to a file")] = False,
    rejects: Annotated[Path | None, typer.Option(help="where --skip-invalid writes rejected rows (JSON Lines)")] = None,
    actor: Annotated[str | None, typer.Option(help="actor for rows that name none")] = None,
) -> None:
    """Import a file of evidence. Importing the same file twice records nothing new.

    An invalid file writes nothing and every bad row is reported by line, field
    and reason; with --skip-invalid the valid rows are recorded and the rejects
    written to a JSON Lines file."""
    from adapters.importers import InvalidImport, import_file

    def summary(report) -> str:
        parts = [f"{k} {v}" for k, v in report.counts().items()]
        text = f"{report.format} {report.path}: " + ", ".join(parts)
        for reason, n in sorted(report.skipped_by_reason.items()):
            text += f"\n  skipped {n}: {reason}"
        if report.rejects_path and report.rejected:
            text += f"\n  rejects written to {report.rejects_path}"
        return text

    def run():
        led = _ledger()
        size = file.stat().st_size
        with tqdm(total=size, desc=f"importing {file.name}", unit="B", unit_scale=True, disable=None,
                  file=sys.stderr) as bar:
            def progress(p: dict) -> None:
                bar.n = min(p.get("bytes", bar.n), size)
                bar.set_postfix(rows=p.get("rows"), errors=p.get("errors"), refresh=False)
                bar.refresh()

            try:
                report = import_file(led, file, fmt=format, skip_invalid=skip_invalid, rejects_path=rejects,
                                     actor=actor or _default_actor(), progress=progress,
                                     beside=get_settings().import_project_beside,
                                     rollback_journal=get_settings().import_first_load_rollback_journal)
            except InvalidImport as e:
                bar.close()
                typer.echo(summary(e.report), err=True)
                raise
        typer.echo(summary(report))
        for e in report.errors[:50] if skip_invalid else []:
            typer.echo(f"  rejected {e}")

    _guard(run)


@app.command()
def export(file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write the log (JSON Lines)")]) -> None:
    """Write the whole event log as JSON Lines; `csa import` of it into an empty store reproduces it."""
    n = _ledger().export(file)
    typer.echo(f"exported {n} events to {file}")


@app.command()
def project(
    follow: Annotated[bool, typer.Option(help="keep following the log (a projector process); stop with Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(help="with --follow: seconds between polls when caught up")] = 0.5,
) -> None:
    """Bring the read model up to date with the log (the projector's catch-up loop).
    With --follow, Ctrl-C (SIGINT) or SIGTERM stops it after the page it is applying."""
    led = _ledger()
    stop = threading.Event()
    handlers = {}
    if follow:  # a signal sets the flag; the loop stops between pages, never inside one
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with tqdm(desc="projecting", unit=" events", disable=None, file=sys.stderr) as bar:
            n = led.catch_up(on_batch=bar.update)
            while follow and not stop.wait(interval):
                n += led.catch_up(on_batch=bar.update)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    typer.echo(f"applied {n} events; read model at log position {led.projector.position()}")


@app.command()
def rebuild() -> None:
    """Rebuild the read model from scratch from the event log."""
    led = _ledger()
    with tqdm(desc="rebuilding", unit=" events", disable=None, file=sys.stderr) as bar:
        n = led.rebuild(on_batch=bar.update)
    typer.echo(f"rebuilt from {n} events; read model at log position {led.projector.position()}")


@app.command()
def verify() -> None:
    """Rebuild the read model into a scratch store and compare digests with the live one."""
    led = _ledger()
    with tempfile.TemporaryDirectory() as d:
        live, fresh, live_counts, fresh_counts = led.verify(f"sqlite:///{d}/scratch.sqlite")
    typer.echo(f"live     {live}  {live_counts}")
    typer.echo(f"rebuilt  {fresh}  {fresh_counts}")
    if live != fresh:
        typer.echo("DIFFERENT: the live read model is not the function of the log it should be.", err=True)
        raise typer.Exit(EXIT_DIFFERENT)
    typer.echo("identical")


@app.command()
def history(
    authority: Annotated[str | None, typer.Option("--authority", "-a", help="3-digit code or name")] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="URN")] = None,
    newest_first: Annotated[bool, typer.Option(help="newest first")] = False,
    limit: Annotated[int, typer.Option(help="at most this many events")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for machines")] = False,
) -> None:
    """The events behind an authority or a provider, in order, corrections beside what they corrected."""
    if not authority and not provider:
        typer.echo("give --authority or --provider", err=True)
        raise typer.Exit(EXIT_INVALID)

    def run():
        led = _ledger()
        la = led.authorities.resolve(authority).la_code if authority else None
        rows = led.history(la_code=la, urn=provider, limit=limit, newest_first=newest_first)
        if as_json:
            typer.echo(json.dumps(rows, default=_json_default, indent=1))
            return
        first_of: dict[str, int] = {}
        for r in sorted(rows, key=lambda r: r["position"]):
            first_of.setdefault(r["aggregate_id"], r["position"])
        for r in rows:
            origin = first_of.get(r["aggregate_id"])
            note = f"  ↳ of #{origin}" if r["version"] > 1 and origin != r["position"] else ""
            what = r["event"].split(".")[-1]
            typer.echo(f"#{r['position']:<7} {r['recorded_at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<18.18} "
                       f"{what:<24} {r['kind'] or '':<30} {r['urn'] or r['la_code'] or ''} {r['client_id']}{note}")
            typer.echo(f"         {json.dumps(r['details'], default=_json_default)[:150]}")

    _guard(run)


@app.command()
def status() -> None:
    """Where the log and the projector stand."""
    led = _ledger()
    typer.echo(f"store: {get_settings().database_url}")
    typer.echo(f"log position: {led.projector.log_position()}  read model position: {led.projector.position()}")


@app.command()
def sample(include_mi: Annotated[bool, typer.Option(help="also import the real 2018 MI files")] = True) -> None:
    """Load the deterministic sample data (idempotent: loading twice records nothing new)."""
    from adapters.sample import load_sample

    summary = load_sample(get_settings().database_url, include_mi=include_mi)
    typer.echo(json.dumps(summary, default=_json_default, indent=1))


@app.command()
def serve(host: Annotated[str, typer.Option()] = "127.0.0.1", port: Annotated[int, typer.Option()] = 8000,
          workers: Annotated[int | None, typer.Option(help="default 1 on SQLite, 2 on PostgreSQL")] = None) -> None:
    """Start the HTTP API (uvicorn)."""
    import uvicorn

    s = get_settings()
    n = workers or (1 if s.is_sqlite else 2)
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=n)


# --- the assessment views (issue 3) -------------------------------------------

AsAt = Annotated[str | None, typer.Option("--as-at", help="business date YYYY-MM-DD (default: the year's publication date)")]
KnownAt = Annotated[str | None, typer.Option("--known-at", help="only what was recorded by then: ISO timestamp (UTC if no zone) or a date (= end of that day UTC); default now")]
Json = Annotated[bool, typer.Option("--json", help="JSON for machines")]
Year = Annotated[int, typer.Option("--year", help="assessment year (2009, 2010, 2011)")]


def parse_as_at(value: str | None, field: str = "--as-at") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail([FieldError(field, value, "not a date in the form YYYY-MM-DD")], "Invalid", EXIT_INVALID)


def parse_known_at(value: str | None, field: str = "--known-at") -> datetime | None:
    """A timestamp (UTC if it names no zone), or a date meaning the end of that day (UTC)."""
    if value is None:
        return None
    try:
        return known_at_from_text(value)
    except ValueError as e:
        _fail([FieldError(field, value, str(e))], "Invalid", EXIT_INVALID)


def _views():
    from adapters.views import Views

    led = _ledger()
    led.catch_up()
    s = get_settings()
    return Views(led, facts_in_store=s.views_facts_in_store, facts_in_store_points=s.views_facts_in_store_points)


def _show(view: dict[str, Any], as_json: bool, renderer) -> None:
    if as_json:
        typer.echo(json.dumps(view, default=_json_default, indent=1))
    else:
        from rich.console import Console

        renderer(view, Console(width=200))


@app.command()
def profile(authority: Annotated[str, typer.Argument(help="3-digit code (e.g. 886) or name")],
            as_at: AsAt = None, known_at: KnownAt = None, year: Year = LATEST_YEAR,
            layer: Annotated[int, typer.Option(help="1 summary; 2 outcome judgements; 3 history by year; 4 providers")] = 1,
            as_json: Json = False) -> None:
    """The performance profile of an authority (¶13-16, Annex A-B)."""
    from adapters import render

    _guard(lambda: _show(_views().profile(authority, year=year, as_at=parse_as_at(as_at),
                                          known_at=parse_known_at(known_at), layer=layer), as_json, render.profile))


@app.command()
def assess(authority: Annotated[str, typer.Argument(help="3-digit code or name")], year: Year = LATEST_YEAR,
           as_at: AsAt = None, known_at: KnownAt = None, as_json: Json = False) -> None:
    """The proposed grade under Annex E, with considerations (¶58) and the full trace."""
    from adapters import render

    _guard(lambda: _show(_views().proposal(authority, year, as_at=parse_as_at(as_at), known_at=parse_known_at(known_at)),
                         as_json, render.proposal))


@app.command()
def exceptions(authority: Annotated[str, typer.Argument(help="3-digit code or name")], year: Year = LATEST_YEAR,
               as_at: AsAt = None, known_at: KnownAt = None, as_json: Json = False) -> None:
    """Every item admitted under an exception and every item excluded by the cut-off (¶28-29)."""
    from adapters import render

    _guard(lambda: _show(_views().exceptions(authority, year, as_at=parse_as_at(as_at), known_at=parse_known_at(known_at)),
                         as_json, render.exceptions))


@app.command()
def diff(authority: Annotated[str, typer.Argument(help="3-digit code or name")], year: Year = LATEST_YEAR,
         from_as_at: Annotated[str | None, typer.Option("--from-as-at")] = None,
         from_known_at: Annotated[str | None, typer.Option("--from-known-at")] = None,
         to_as_at: Annotated[str | None, typer.Option("--to-as-at")] = None,
         to_known_at: Annotated[str | None, typer.Option("--to-known-at")] = None,
         as_json: Json = False) -> None:
    """What changed between two (as-at, known-at) points: evidence, figures, bands and the proposal."""
    from adapters import render

    def run():
        v = _views()
        start = v.point(year, parse_as_at(from_as_at, "--from-as-at"), parse_known_at(from_known_at, "--from-known-at"))
        end = v.point(year, parse_as_at(to_as_at, "--to-as-at"), parse_known_at(to_known_at, "--to-known-at"))
        _show(v.diff(authority, year, start, end), as_json, render.diff)

    _guard(run)


@app.command()
def national(year: Year = LATEST_YEAR, as_at: AsAt = None, known_at: KnownAt = None,
             fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
             out: Annotated[Path | None, typer.Option(help="write to this file instead of the screen")] = None) -> None:
    """Every authority's proposal as at a date, and the national counts per grade (cf. Table 9)."""
    import csv
    import io

    from adapters import render

    def run():
        view = _views().national(year, as_at=parse_as_at(as_at), known_at=parse_known_at(known_at))
        if fmt == "table" and out is None:
            _show(view, False, render.national)
            return
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=list(view["authorities"][0].keys()))
            w.writeheader()
            w.writerows(view["authorities"])
            text = buf.getvalue()
        elif fmt in ("json", "table"):
            text = json.dumps(view, default=_json_default, indent=1)
        else:
            _fail([FieldError("--format", fmt, "must be table, csv or json")], "Invalid", EXIT_INVALID)
        if out:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {len(view['authorities'])} authorities to {out}; " +
                       ", ".join(f"{k}: {v}" for k, v in view["counts"].items()))
        else:
            typer.echo(text)

    _guard(run)


@app.command("keep-facts")
def keep_facts(year: Year = LATEST_YEAR) -> None:
    """Read every authority's facts as known now and keep them in the store (ADR 0028): the next
    process's national table or warm start then takes them from there (~2 s rather than ~10 s on
    the national set). Run it after an import; any national table does it too."""

    def run():
        if not get_settings().views_facts_in_store:
            raise ValueError("CSA_VIEWS_FACTS_IN_STORE is false: nothing is kept in the store")
        views = _views()
        started = time.perf_counter()
        n = views.warm(year)
        views.wait_kept_in_store()
        typer.echo(f"the store keeps the facts of {n} authorities as known now for {year} "
                   f"({time.perf_counter() - started:.1f} s)")

    _guard(run)


@app.command()
def generate(
    scale: Annotated[str, typer.Option(help="small (3 authorities) | medium (20) | national (all 152, > 1 M postings)")] = "small",
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="where to write the JSON Lines")] = Path("var/generated.jsonl"),
    seed: Annotated[int, typer.Option(help="the same seed writes the same bytes")] = 2011,
) -> None:
    """Write a deterministic synthetic dataset in the integration format (docs/performance.md)."""
    from adapters.generate import SCALES
    from adapters.generate import generate as generate_dataset

    if scale not in SCALES:
        _fail([FieldError("--scale", scale, "must be one of " + ", ".join(SCALES))], "Invalid", EXIT_INVALID)
    with tqdm(desc=f"generating {scale}", unit=" lines", disable=None, file=sys.stderr) as bar:
        summary = generate_dataset(scale, out, seed=seed, progress=bar.update)
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "by_type"}, indent=1))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
