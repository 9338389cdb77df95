"""`csa`: the command-line tool of CSA Ledger.

Every command reads the store from CSA_DATABASE_URL (default: an SQLite file in
./var). Errors name the field, the value and the reason, and exit non-zero.
"""

from __future__ import annotations

import getpass
import json
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from adapters.settings import get_settings
from domain.authorities import UnknownAuthority
from domain.errors import ConflictingPosting, DomainError, FieldError, InvalidEvidence
from domain.postings import KINDS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CSA Ledger: the evidence ledger of Ofsted's children's services assessment.")

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
    except (DomainError, UnknownAuthority) as e:
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
    """Import a file of evidence. Importing the same file twice records nothing new."""
    from adapters.importers import import_file

    def run():
        led = _ledger()
        with tqdm(desc=f"importing {file.name}", unit=" rows", disable=None, file=sys.stderr) as bar:
            report = import_file(led, file, fmt=format, skip_invalid=skip_invalid, rejects_path=rejects,
                                 actor=actor or _default_actor(), progress=lambda n: bar.update(n))
        typer.echo(report.summary())
        if report.errors and not skip_invalid:
            _fail(report.errors, "Invalid file", EXIT_INVALID)

    _guard(run)


@app.command()
def export(file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write the log (JSON Lines)")]) -> None:
    """Write the whole event log as JSON Lines; `csa import` of it into an empty store reproduces it."""
    n = _ledger().export(file)
    typer.echo(f"exported {n} events to {file}")


@app.command()
def project() -> None:
    """Bring the read model up to date with the log (the projector's catch-up loop)."""
    led = _ledger()
    with tqdm(desc="projecting", unit=" events", disable=None, file=sys.stderr) as bar:
        n = led.catch_up(on_batch=bar.update)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
