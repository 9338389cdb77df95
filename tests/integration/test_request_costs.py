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


def test_kept_never_asks_the_store_and_follows_authenticate_and_revoke(ledger, monotonic):
    worker = TokenStore(ledger.engine, PEPPER, cache_seconds=5)
    tid, token = worker.issue("feed", "inspector")
    assert worker.kept(token) is None, "not yet authenticated in this process"
    assert worker.authenticate(token).role == "inspector"
    assert worker.kept(token).role == "inspector"
    monotonic.now += 5.1
    assert worker.kept(token) is None, "kept only for cache_seconds"
    worker.authenticate(token)
    worker.revoke(tid)
    assert worker.kept(token) is None


# --- positions kept for positions_kept_seconds (an HTTP read asks kept_positions first) -------

REG = {"type": "provider_registered", "actor": "t", "la_code": "886", "group": "childminders"}


@pytest.fixture
def ledger_clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("adapters.ledger.time.monotonic", c)
    return c


def kept_ledger(url: str, seconds: float):
    from adapters.ledger import Ledger
    return Ledger(url, positions_kept_seconds=seconds)


def test_positions_are_kept_for_the_time_set_and_never_without_one(store_url, ledger_clock):
    never, kept = kept_ledger(store_url, 0), kept_ledger(store_url, 0.1)
    try:
        assert never.positions() == (0, 0) and never.kept_positions() is None
        assert kept.kept_positions() is None, "nothing read yet"
        assert kept.positions() == (0, 0)
        assert kept.kept_positions() == (0, 0)
        ledger_clock.now += 0.099
        assert kept.kept_positions() == (0, 0)
        ledger_clock.now += 0.002
        assert kept.kept_positions() is None, "older than positions_kept_seconds"
    finally:
        never.close()
        kept.close()


def test_a_write_or_a_projection_through_the_ledger_forgets_the_kept_positions(store_url, ledger_clock):
    led = kept_ledger(store_url, 60)
    try:
        led.positions()
        led.record([{**REG, "client_id": "r1", "urn": "P1"}], project=False)
        assert led.kept_positions() is None, "a write here forgets them"
        read, log = led.positions()
        assert read < log and led.kept_positions() == (read, log)
        led.catch_up()
        assert led.kept_positions() is None, "so does a projection"
        assert led.positions() == (log, log)
    finally:
        led.close()


def test_positions_read_while_this_ledger_wrote_are_not_kept(store_url, ledger_clock, monkeypatch):
    led = kept_ledger(store_url, 60)
    try:
        read = led._read_positions

        def racing() -> tuple[int, int]:
            got = read()  # read, then another thread of this process writes before they are kept
            led.record([{**REG, "client_id": "r2", "urn": "P2"}])
            return got

        monkeypatch.setattr(led, "_read_positions", racing)
        assert led.positions() == (0, 0)
        assert led.kept_positions() is None, "the reading was overtaken by a write"
    finally:
        led.close()


def test_another_process_write_is_seen_after_the_kept_time_or_at_once_with_min_position(store_url, ledger_clock):
    """Through the API's freshness dependency: a plain read may use positions kept for
    positions_kept_seconds; a read with the min_position an ingest returned never does."""
    import asyncio

    from adapters.settings import Settings
    from api.deps import fresh_read_model

    api_side, other = kept_ledger(store_url, 0.1), kept_ledger(store_url, 0)
    settings = Settings(database_url=store_url, read_your_writes_wait_seconds=0.3)
    try:
        assert asyncio.run(fresh_read_model(api_side, settings, None)) == 0
        position = other.record([{**REG, "client_id": "r3", "urn": "P3"}], project=False).position
        assert asyncio.run(fresh_read_model(api_side, settings, None)) == 0, "kept: not asked again yet"
        assert asyncio.run(fresh_read_model(api_side, settings, position)) == position, "read your writes"
        ledger_clock.now += 0.2
        position2 = other.record([{**REG, "client_id": "r4", "urn": "P4"}], project=False).position
        ledger_clock.now += 0.2
        assert asyncio.run(fresh_read_model(api_side, settings, None)) == position2, "asked again, caught up"
    finally:
        api_side.close()
        other.close()
