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


@pytest.mark.parametrize("with_probe", [False, True], ids=["thread-pool", "probe-if-postgres"])
def test_another_process_write_is_seen_after_the_kept_time_or_at_once_with_min_position(store_url, ledger_clock,
                                                                                        with_probe):
    """Through the API's freshness dependency: a plain read may use positions kept for
    positions_kept_seconds; a read with the min_position an ingest returned never does.
    On PostgreSQL the positions are asked on the event loop (api.probe), elsewhere in the
    thread pool: the same answers."""
    import asyncio
    from types import SimpleNamespace

    from adapters.settings import Settings
    from api.deps import fresh_read_model
    from api.probe import StoreProbe

    api_side, other = kept_ledger(store_url, 0.1), kept_ledger(store_url, 0)
    probe = StoreProbe.for_store(store_url, api_side, TokenStore(api_side.engine, PEPPER)) if with_probe else None
    assert (probe is None) == (not with_probe or store_url.startswith("sqlite")), "a probe on PostgreSQL only"
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(probe=probe)))
    settings = Settings(database_url=store_url, read_your_writes_wait_seconds=0.3)

    async def fresh(min_position):
        try:
            return await fresh_read_model(request, api_side, settings, min_position)
        finally:
            if probe is not None:
                await probe.close()  # each asyncio.run is a new event loop

    try:
        assert asyncio.run(fresh(None)) == 0
        position = other.record([{**REG, "client_id": "r3", "urn": "P3"}], project=False).position
        assert asyncio.run(fresh(None)) == 0, "kept: not asked again yet"
        assert asyncio.run(fresh(position)) == position, "read your writes"
        ledger_clock.now += 0.2
        position2 = other.record([{**REG, "client_id": "r4", "urn": "P4"}], project=False).position
        ledger_clock.now += 0.2
        assert asyncio.run(fresh(None)) == position2, "asked again, caught up"
        if probe is not None:
            assert probe.asked >= 2, "the positions were asked on the event loop"
    finally:
        api_side.close()
        other.close()


def test_the_probe_authenticates_as_the_token_store_does_and_keeps_what_it_found(pg_url, monotonic):
    import asyncio

    from adapters.ledger import Ledger
    from api.probe import StoreProbe

    led = Ledger(pg_url)
    tokens = TokenStore(led.engine, PEPPER, cache_seconds=5)
    probe = StoreProbe.for_store(pg_url, led, tokens)
    tid, token = TokenStore(led.engine, PEPPER).issue("probe-feed", "local_authority", "886")

    async def ask(t):
        try:
            return await probe.principal(t)
        finally:
            await probe.close()

    try:
        asked, principal = asyncio.run(ask(token))
        assert asked and principal == tokens.authenticate(token)
        assert (principal.role, principal.la_code, principal.token_id) == ("local_authority", "886", tid)
        assert tokens.kept(token) == principal, "kept for cache_seconds, as authenticate keeps it"
        assert asyncio.run(ask("csa_not-a-token")) == (True, None)
        TokenStore(led.engine, PEPPER).revoke(tid)
        monotonic.now += 5.1
        assert asyncio.run(ask(token)) == (True, None), "revoked: refused once the kept time is up"
        assert tokens.kept(token) is None
    finally:
        led.close()


def test_requests_asking_the_probe_at_once_share_one_round_trip(pg_url):
    import asyncio

    from adapters.ledger import Ledger
    from api.probe import StoreProbe

    led = Ledger(pg_url, positions_kept_seconds=60)
    tokens = TokenStore(led.engine, PEPPER, cache_seconds=60)
    probe = StoreProbe.for_store(pg_url, led, tokens)
    _, token = tokens.issue("probe-many", "inspector")

    async def many():
        try:
            got = await asyncio.gather(*[probe.positions() for _ in range(10)])
            who = await asyncio.gather(*[probe.principal(token) for _ in range(10)])
            return got, who
        finally:
            await probe.close()

    try:
        got, who = asyncio.run(many())
        assert len(set(got)) == 1 and got[0] == led.positions()
        assert {p.name for _, p in who} == {"probe-many"}
        assert probe.asked == 2, "one question for the positions, one for the token"
    finally:
        led.close()
