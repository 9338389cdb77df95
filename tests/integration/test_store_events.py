"""`LedgerApplication.store_events`, the write of an HTTP or CLI batch (ADR 0037): what it
stores must be exactly what the library's `Application.save` stores, in one transaction,
and a batch that collides with another writer's must write nothing (the ledger then stages
it again). On PostgreSQL it writes by COPY under the library's own table lock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.eventstore import LedgerApplication, make_application, persistence_env
from adapters.reference import authorities
from adapters.sample import sample_postings
from domain.handlers import Batch
from domain.postings import parse_posting

CODES = authorities().codes
AT = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)


def staged_batches(limit: int = 6):
    """The sample's first batches, each staged on the application that will store it."""
    for n, (when, raws) in enumerate(sample_postings()):
        if n == limit:
            return
        yield when, [parse_posting(r, default_actor="sample", known_la_codes=CODES)[0] for r in raws]


def log_rows(app) -> list[tuple[str, int, str, bytes, int]]:
    return [(n.originator_id.hex, n.originator_version, n.topic, bytes(n.state), n.id)
            for n in app.recorder.select_notifications(start=1, limit=1_000_000)]


def test_the_log_it_writes_is_the_one_save_writes_byte_for_byte(store_url, tmp_path):
    stored, saved = make_application(store_url), make_application(f"sqlite:///{tmp_path}/saved.sqlite")
    try:
        for when, postings in staged_batches():
            for app, write in ((stored, stored.store_events), (saved, lambda events: saved.save(*events))):
                batch = Batch(app, when, known_la_codes=CODES)
                batch.stage(postings)
                write(batch.events)
        rows = log_rows(stored)
        assert len(rows) > 500
        assert rows == log_rows(saved)
        assert [r[4] for r in rows] == list(range(1, len(rows) + 1))  # positions with no gap
    finally:
        stored.close()
        saved.close()


def test_a_batch_one_of_whose_events_another_writer_stored_first_writes_nothing(store_url):
    app = make_application(store_url)
    try:
        (when, postings), *_ = staged_batches(1)
        first = Batch(app, when, known_la_codes=CODES)
        first.stage(postings[:3])
        app.store_events(first.events)
        head = app.log_head()
        # Staged on a store that did not hold the first three yet: their events collide.
        other = make_application("memory")
        again = Batch(other, when, known_la_codes=CODES)
        again.stage(postings)
        assert len(again.events) > len(first.events)
        with pytest.raises(IntegrityError):
            app.store_events(again.events)
        assert app.log_head() == head
        assert len(log_rows(app)) == head
        # The events that did not collide are stored once the colliding ones are left out.
        # (On PostgreSQL the refused COPY has used numbers of the log's sequence, as the
        # library's refused INSERT uses one: positions go on past a gap, in commit order.)
        taken = {(e.originator_id, e.originator_version) for e in first.events}
        app.store_events([e for e in again.events if (e.originator_id, e.originator_version) not in taken])
        rows = log_rows(app)
        assert [(r[0], r[1]) for r in rows] == [(e.originator_id.hex, e.originator_version) for e in
                                                first.events + [e for e in again.events
                                                                if (e.originator_id, e.originator_version) not in taken]]
        assert rows[head][4] > head and [r[4] for r in rows] == sorted({r[4] for r in rows})
    finally:
        app.close()


def test_a_mapper_the_encoder_does_not_cover_goes_through_save(tmp_path):
    """A compressed store: the encoder's plain JSON would be unreadable through the mapper."""
    app = LedgerApplication(env={**persistence_env(f"sqlite:///{tmp_path}/z.sqlite"),
                                 "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"})
    try:
        (when, postings), *_ = staged_batches(1)
        batch = Batch(app, when, known_la_codes=CODES)
        batch.stage(postings)
        app.store_events(batch.events)
        notifications = app.recorder.select_notifications(start=1, limit=100_000)
        assert len(notifications) == len(batch.events)
        assert not notifications[0].state.startswith(b"{")  # compressed, as save stores it
        read = [app.mapper.to_domain_event(n) for n in notifications]
        assert [(e.originator_id, e.originator_version, type(e)) for e in read] == \
            [(e.originator_id, e.originator_version, type(e)) for e in batch.events]
    finally:
        app.close()


def test_nothing_to_store_is_no_transaction(store_url):
    app = make_application(store_url)
    try:
        app.store_events([])
        assert app.log_head() == 0
    finally:
        app.close()
