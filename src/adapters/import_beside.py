"""The read model of a bulk import built beside its staging, in a second process (ADR 0027).

`BesideProjection.start(ledger, scratch, path)` forks a process that runs
`projections.beside.project_rows` and `build_indexes` over the import's scratch while this process stages
the file; the importer tells it each time a chunk is staged (`staged`) and when the
staging is over (`end`). Once the import has written the log, `adopt` waits for the
process and copies its rows into the store's read model (`projections.beside.adopt`), or
says why it did not; the importer's catch-up then projects whatever is left, as it always
did (everything, when nothing was adopted).

Only where it can pay and cannot be wrong: an SQLite store whose log and read model are
both empty when the staging starts (a first load: the scratch's positions are then the
log's), a file of at least `MIN_BYTES`, and a platform with fork. The process builds the
rows at a lower priority (`NICE`): it fills the core the parsing process leaves idle and
must not slow the staging, which bounds the import. It builds their indexes after the
staging, at the importer's priority, each table's file on a thread, and reports each table
built; the importer copies a table as soon as it is reported (ADR 0039).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from adapters.eventstore import Scratch
from adapters.ledger import Ledger
from projections.beside import (
    NotAdopted,
    ScratchReader,
    adopt,
    build_indexes,
    log_path,
    project_rows,
)

log = logging.getLogger("csa.import")

MIN_BYTES = 4 << 20  # files at least this large (the size from which parsing has its own process too)
NICE = 5  # the projecting process's niceness above the importer's (+10 until ADR 0038)
JOIN_SECONDS = 600.0  # longest wait for the projecting process once the log is written


class BesideProjection:
    def __init__(self, ledger: Ledger, scratch: Scratch, process: Any, sender: Any, out: str, built: Any = None):
        self.ledger = ledger
        self.scratch = scratch
        self.process = process
        self.sender = sender
        self.built = built  # the process's messages: each table whose rows and indexes are built
        self.ready: set[str] = set()
        self.out = out
        self.ended = False

    @classmethod
    def start(cls, ledger: Ledger, scratch: Scratch, path: Path) -> BesideProjection | None:
        """Start projecting beside the staging, where it applies (see the module); else None."""
        if not possible(ledger, path):
            return None
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        built, built_sender = ctx.Pipe(duplex=False)
        out = scratch.path + ".rm"
        process = ctx.Process(target=_child, args=(receiver, ledger.app.mapper, scratch.path, out, built_sender),
                              name="csa-import-projection", daemon=True)
        process.start()
        receiver.close()
        built_sender.close()
        return cls(ledger, scratch, process, sender, out, built)

    def staged(self, last: int) -> None:
        """The scratch holds (committed) events up to position `last`."""
        with contextlib.suppress(OSError):  # the process died: adopt() says so
            self.sender.send(last)

    def end(self) -> None:
        """Nothing more will be staged: the process finishes the scratch it has."""
        if not self.ended:
            self.ended = True
            with contextlib.suppress(OSError):
                self.sender.send(None)

    def adopt(self) -> bool:
        """Copy the process's read model into the store's, each table as soon as the process has
        built it (ADR 0039), if the store is still empty of one and its log is exactly the staged
        events. Whether it did."""
        self.end()
        t = time.perf_counter()
        waited = 0.0

        def wait_until_built(table: str) -> None:
            nonlocal waited
            w = time.perf_counter()
            deadline = w + JOIN_SECONDS
            try:
                while table not in self.ready:
                    if not self.built.poll(max(0.0, deadline - time.perf_counter())):
                        raise NotAdopted(f"the projecting process had not built {table} in {JOIN_SECONDS:.0f} s")
                    self.ready.add(self.built.recv())
            except (EOFError, OSError):
                self.process.join(JOIN_SECONDS)
                raise NotAdopted(f"the projecting process ended with exit code {self.process.exitcode} "
                                 f"before {table} was built") from None
            finally:
                waited += time.perf_counter() - w

        try:
            adopt(self.ledger.engine, self.ledger.app.env.get("SQLITE_DBNAME"),
                  self.ledger.app.recorder.events_table_name, self.out, self.scratch.count, ready=wait_until_built)
        except NotAdopted as e:
            log.info("the read model projected beside the import was not adopted (%s); projecting the log", e)
            return False
        except sqlite3.Error as e:  # e.g. the store's write lock not had in time: nothing was copied
            log.warning("the read model projected beside the import could not be adopted (%s); projecting the log", e)
            return False
        log.info("read model projected beside the import adopted: waited %.1f s for it, copied and indexed in %.1f s",
                 waited, time.perf_counter() - t - waited)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sender.close()
        if self.built is not None:
            with contextlib.suppress(OSError):
                self.built.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        for path in (self.out, log_path(self.out)):
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)


def possible(ledger: Ledger, path: Path) -> bool:
    if not (sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()):
        return False
    if ledger.engine.dialect.name != "sqlite" or not ledger.app.env.get("SQLITE_DBNAME"):
        return False
    if path.stat().st_size < MIN_BYTES:
        return False
    return ledger.app.log_head() == 0 and ledger.projector.position() == 0


def _child(receiver: Any, mapper: Any, scratch_path: str, out: str, built: Any) -> None:
    """The projecting process: the scratch's events, as they are staged, into `out`; then each
    table's name to `built` once its indexes are built too (from two threads: one at a time).

    The rows are built at a lower priority (`NICE`), on a thread that lowers its own (on Linux a
    thread's niceness is its own, and the threads it starts inherit it): while the staging runs,
    this process must not slow it. The indexes are built after the staging, when the import waits
    for them, so they are built from this process's first thread, at the importer's priority
    (ADR 0039; a process cannot raise its priority back once lowered)."""
    lock = threading.Lock()
    failed: list[BaseException] = []

    def ready(table: str) -> None:
        with lock:
            built.send(table)

    def rows() -> None:
        try:
            with contextlib.suppress(OSError):
                os.nice(NICE)
            project_rows(mapper, reader, out)
        except BaseException as e:  # noqa: BLE001 - raised in this process's first thread
            failed.append(e)

    def staged() -> tuple[int, bool]:
        message = receiver.recv()  # EOFError if the importer is gone: this process ends with it
        return (reader.last, True) if message is None else (message, False)

    reader = ScratchReader(scratch_path, staged)
    try:
        thread = threading.Thread(target=rows, name="csa-beside-rows")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        build_indexes(out, ready)
    finally:
        reader.close()
        built.close()
