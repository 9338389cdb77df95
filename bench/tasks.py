"""Measurements, each run in a child process of its own (`python -m bench.tasks TASK JSON`)
so that one store's work, memory and caches do not colour another's. The child prints
one line `BENCH-RESULT {json}`.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULT = "BENCH-RESULT "


def rss_kb() -> int:
    """Peak resident set size of this process so far (kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return rss_kb()


# --- (1) bulk import ------------------------------------------------------------


def task_import(url: str, path: str, chunk: int = 2000) -> dict[str, Any]:
    from adapters.ledger import Ledger

    ledger = Ledger(url)
    before = current_rss_kb()
    t = time.perf_counter()
    if importlib.util.find_spec("adapters.importers") is not None:
        from adapters.importers import import_file

        report = import_file(ledger, Path(path), fmt="jsonl", actor="bench")
        lines, how = report.rows, "adapters.importers.import_file"
    else:  # before the importer existed: Ledger.record in chunks
        lines, batch = 0, []
        with open(path, encoding="utf-8") as fh:
            for text in fh:
                batch.append(json.loads(text))
                if len(batch) >= chunk:
                    ledger.record(batch)
                    lines, batch = lines + len(batch), []
        if batch:
            ledger.record(batch)
            lines += len(batch)
        how = f"Ledger.record in chunks of {chunk}"
    seconds = time.perf_counter() - t
    events = ledger.projector.log_position()
    ledger.close()
    return {"seconds": seconds, "lines": lines, "events": events, "how": how,
            "rss_before_kb": before, "rss_peak_kb": rss_kb()}


def task_save_baseline(url: str, path: str, limit: int, batch: int = 10000, repeats: int = 1) -> dict[str, Any]:
    """The library's own batched Application.save of the same postings (one plain
    Aggregate created per line, its event carrying the line's fields), in a fresh store.

    On PostgreSQL at most 1,000 events per save: the library's save of 10,000 or more
    events in one call hangs there (client and server both waiting; psycopg issue 685),
    see docs/adr/0020-bulk-import.md."""
    if url.startswith("postgresql"):
        batch = min(batch, 1000)
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from adapters.eventstore import persistence_env
    from bench.stores import drop_store, new_store

    class Posted(Aggregate):
        def __init__(self, state: dict[str, Any]) -> None:
            self.state = state

    class Baseline(Application):
        name = "BenchBaseline"

    raws = []
    with open(path, encoding="utf-8") as fh:
        for text in fh:
            raws.append(json.loads(text))
            if len(raws) >= limit:
                break
    times = []
    kind = "sqlite" if url.startswith("sqlite") else "postgres"
    workdir = Path(url.removeprefix("sqlite:///")).parent if kind == "sqlite" else Path(".")
    for _ in range(repeats):
        store = new_store(kind, workdir, "baseline")
        app = Baseline(env=persistence_env(store))
        t = time.perf_counter()
        for i in range(0, len(raws), batch):
            app.save(*[Posted(state=r) for r in raws[i:i + batch]])
        times.append(time.perf_counter() - t)
        app.close()
        drop_store(store)
    return {"events": len(raws), "seconds": statistics.median(times), "runs": times, "batch": batch}


# --- (2) projection rebuild ------------------------------------------------------------


def task_rebuild(url: str, repeats: int = 1) -> dict[str, Any]:
    from adapters.ledger import Ledger

    ledger = Ledger(url)
    times, events = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        events = ledger.rebuild()
        times.append(time.perf_counter() - t)
    ledger.close()
    return {"events": events, "seconds": statistics.median(times), "runs": times}


def task_read_decode(url: str, repeats: int = 3, page: int = 10000, decode: bool = True) -> dict[str, Any]:
    """Merely reading (and decoding) the whole log: recorder.select_notifications + mapper.to_domain_event."""
    from adapters.eventstore import make_application

    app = make_application(url)
    times, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n, start = 0, 1
        while True:
            notes = app.recorder.select_notifications(start, page)
            if not notes:
                break
            if decode:
                for note in notes:
                    app.mapper.to_domain_event(note)
            n += len(notes)
            start = notes[-1].id + 1
        times.append(time.perf_counter() - t)
    app.close()
    return {"events": n, "seconds": statistics.median(times), "runs": times}


# (3)-(4) as-at views: bench/views_bench.py (run by bench.run on each store).


TASKS = {"import": task_import, "save_baseline": task_save_baseline, "rebuild": task_rebuild,
         "read_decode": task_read_decode}


def main(argv: list[str]) -> None:
    name, args = argv[0], json.loads(argv[1])
    result = TASKS[name](**args)
    print(RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
