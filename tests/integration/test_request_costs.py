"""What an HTTP read costs in round trips to the store (issue 5), on SQLite and PostgreSQL:
the read model's and the log's positions in one query, and a token's principal kept
for `token_cache_seconds` — with revocation still honoured."""

from __future__ import annotations

import pytest

from adapters.tokens import TokenStore

PEPPER = "x" * 40


def test_positions_are_the_read_models_and_the_logs(ledger):
    assert ledger.positions() == (0, 0)
    ledger.record([{"type": "provider_registered", "client_id": "r1", "actor": "t", "urn": "P1", "la_code": "886",
                    "group": "childminders"}], project=False)
    log = ledger.projector.log_position()
    assert log > 0
    assert ledger.positions() == (0, log)
    ledger.catch_up()
    assert ledger.positions() == (ledger.projector.position(), log) == (log, log)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("adapters.tokens.time.monotonic", c)
    return c


def test_a_kept_token_is_refused_once_revoked_here_at_once_and_elsewhere_within_the_cache_time(ledger, monotonic):
    worker = TokenStore(ledger.engine, PEPPER, cache_seconds=5)
    other = TokenStore(ledger.engine, PEPPER)  # another process: the CLI, another worker
    tid, token = other.issue("feed", "inspector")
    assert worker.authenticate(token).role == "inspector"
    other.revoke(tid)
    monotonic.now += 4.9
    assert worker.authenticate(token) is not None, "kept for up to 5 s in another process"
    monotonic.now += 0.2
    assert worker.authenticate(token) is None, "refused once the time is up"

    tid2, token2 = worker.issue("feed2", "auditor")
    assert worker.authenticate(token2).role == "auditor"
    worker.revoke(tid2)
    assert worker.authenticate(token2) is None, "the revoking process refuses at once"


def test_without_a_cache_time_every_request_asks_the_store(ledger, monotonic):
    worker = TokenStore(ledger.engine, PEPPER)
    tid, token = TokenStore(ledger.engine, PEPPER).issue("feed", "inspector")
    assert worker.authenticate(token) is not None
    TokenStore(ledger.engine, PEPPER).revoke(tid)
    assert worker.authenticate(token) is None


def test_an_unknown_token_is_never_kept(ledger, monotonic):
    worker = TokenStore(ledger.engine, PEPPER, cache_seconds=60)
    assert worker.authenticate("csa_nothing") is None
    assert worker._kept == {}
