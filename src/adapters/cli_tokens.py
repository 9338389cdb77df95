"""`csa tokens issue|list|revoke`: bearer tokens of the HTTP API, stored only as
keyed hashes (the plain token is printed once, at issue).

Wire it into the main CLI with `app.add_typer(tokens_app, name="tokens")`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from adapters.settings import get_settings
from adapters.tokens import ROLES, TokenError, TokenStore

tokens_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Bearer tokens of the HTTP API: issue, list, revoke.")

EXIT_INVALID = 2
EXIT_NOT_FOUND = 5


def _store() -> TokenStore:
    from adapters.database import make_engine

    s = get_settings()
    return TokenStore(make_engine(s.database_url), s.token_pepper)


@tokens_app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="who holds it: becomes the actor of what they record")],
    role: Annotated[str, typer.Option("--role", "-r", help=" | ".join(ROLES))],
    authority: Annotated[str | None, typer.Option("--authority", "-a",
                                                  help="local_authority only: 3-digit code or name")] = None,
) -> None:
    """Issue a token. It is printed once; only its keyed hash is stored."""
    from adapters.reference import authorities
    from domain.authorities import UnknownAuthority

    try:
        la = authorities().resolve(authority).la_code if authority else None
        tid, token = _store().issue(name, role, la)
    except (TokenError, UnknownAuthority) as e:
        typer.echo(f"refused: {e}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(f"token {tid} for {name} ({role}{' ' + la if la else ''}); keep it secret, it is not shown again:",
               err=True)
    typer.echo(token)


@tokens_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="JSON for machines")] = False) -> None:
    """Every token issued, revoked or not (never the token itself)."""
    rows = _store().list()
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=1))
        return
    for r in rows:
        state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "active"
        typer.echo(f"{r['id']:>4}  {r['name']:<30.30} {r['role']:<16} {r['la_code'] or '':<4} "
                   f"issued {r['created_at']:%Y-%m-%d %H:%M}  {state}")


@tokens_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="the id `csa tokens list` shows")]) -> None:
    """Revoke a token: it is refused (401) from the next request on."""
    if not _store().revoke(token_id):
        typer.echo(f"no unrevoked token {token_id}", err=True)
        raise typer.Exit(EXIT_NOT_FOUND)
    typer.echo(f"revoked token {token_id}")
