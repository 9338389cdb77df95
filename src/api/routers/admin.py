"""Tokens and operations (role admin)."""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from adapters.tokens import Principal, TokenError
from api import policy
from api.deps import LedgerDep, PrincipalDep, TokensDep
from api.errors import invalid_parameter, not_found
from api.schemas import RebuildResult, TokenCreate, TokenInfo, TokenIssued, VerifyResult, problems
from domain.authorities import UnknownAuthority


def admin(principal: PrincipalDep) -> Principal:
    policy.require_role(principal, policy.ADMIN)
    return principal


router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin)])


@router.get("/tokens", response_model=list[TokenInfo], responses=problems(401, 403),
            summary="Every token (never the token itself)")
def list_tokens(tokens: TokensDep) -> list[TokenInfo]:
    return [TokenInfo(**t) for t in tokens.list()]


@router.post("/tokens", response_model=TokenIssued, status_code=201, responses=problems(401, 403, 422),
             summary="Issue a token (shown once)")
def issue_token(body: TokenCreate, tokens: TokensDep, ledger: LedgerDep) -> TokenIssued:
    try:
        la = ledger.authorities.resolve(body.la_code).la_code if body.la_code else None
        tid, token = tokens.issue(body.name, body.role, la)
    except UnknownAuthority as e:
        raise invalid_parameter("la_code", body.la_code, str(e), where="body") from None
    except TokenError as e:
        raise invalid_parameter("la_code" if "la_code" in str(e) else "role", body.la_code, str(e),
                                where="body") from None
    return TokenIssued(**tokens.get(tid), token=token)


@router.delete("/tokens/{token_id}", status_code=204, responses=problems(401, 403, 404, 422),
               summary="Revoke a token")
def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**62, examples=[3])], tokens: TokensDep) -> Response:
    if not tokens.revoke(token_id):
        raise not_found(f"no unrevoked token {token_id}")
    return Response(status_code=204)


@router.post("/rebuild", response_model=RebuildResult, responses=problems(401, 403),
             summary="Rebuild the read model from the log")
def rebuild(ledger: LedgerDep) -> RebuildResult:
    n = ledger.rebuild()
    return RebuildResult(events=n, position=ledger.projector.position())


@router.get("/verify", response_model=VerifyResult, responses=problems(401, 403),
            summary="Rebuild into a scratch store and compare digests with the live read model")
def verify(ledger: LedgerDep) -> VerifyResult:
    with tempfile.TemporaryDirectory() as d:
        live, fresh, live_counts, fresh_counts = ledger.verify(f"sqlite:///{d}/scratch.sqlite")
    return VerifyResult(identical=live == fresh, live=live, rebuilt=fresh, live_counts=live_counts,
                        rebuilt_counts=fresh_counts)
