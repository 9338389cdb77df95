"""The write path of a bulk import, measured on its own (issue 5):
`python -m bench.import_bench [--scale medium|national] [--stores sqlite,postgres]
[--project] [--baseline-lines N] [--repeat N] [--profile]`.

For each store: (a) the import through `adapters.importers.import_file` on a fresh
store, without the projector's catch-up unless --project (the write path alone),
in a child process whose peak RSS is reported; (b) the library's own batched
`Application.save` of the same events the import wrote (read back from the import's
store, re-saved as plain aggregates' events, `--save-batch` per save) on a fresh store
of the same kind, in the same run; and the ratio. Stores live under var/importbench/
(SQLite files) or in throw-away PostgreSQL databases `csa_importbench_*`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import stores

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "importbench"
RESULT = "IMPORTBENCH-RESULT "


def dataset(scale: str) -> Path:
    for d in (WORKDIR, ROOT / "var" / "bench"):
        p = d / f"{scale}-2011.jsonl"
        if p.exists():
            return p
    from adapters.generate import generate

    p = WORKDIR / f"{scale}-2011.jsonl"
    generate(scale, str(p), seed=2011)
    return p


def new_store(kind: str, label: str) -> str:
    return stores.new_store(kind, WORKDIR, f"importbench-{label}")


drop_store = stores.drop_store


# --- child tasks ------------------------------------------------------------------


def task_import(url: str, path: str, project: bool, profile: str | None = None, beside: bool = True) -> dict[str, Any]:
    from adapters.importers import import_file
    from adapters.ledger import Ledger

    ledger = Ledger(url)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    t, cpu = time.perf_counter(), time.process_time()
    report = import_file(ledger, Path(path), fmt="jsonl", actor="bench", project=project, beside=beside)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if profiler:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    events = ledger.app.recorder.max_notification_id() or 0
    ledger.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "children_cpu_seconds": children.ru_utime + children.ru_stime,
            "lines": report.rows, "recorded": report.recorded, "events": events,
            "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def task_baseline(source_url: str, events: int, batch: int, repeats: int) -> dict[str, Any]:
    """The library's batched Application.save of the events the import wrote: the first
    `events` of its log, each turned back into its aggregate's event (same state, same
    size), saved `batch` per save on a fresh store of the same kind."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from adapters.eventstore import make_application, persistence_env

    class Posted(Aggregate):
        def __init__(self, state: dict[str, Any]) -> None:
            self.state = state

    class Baseline(Application):
        name = "ImportBenchBaseline"

    src = make_application(source_url)
    states: list[dict[str, Any]] = []
    start = 1
    while len(states) < events:
        notes = src.recorder.select_notifications(start, 10000)
        if not notes:
            break
        states += [json.loads(n.state) for n in notes]
        start = notes[-1].id + 1
    src.close()
    states = states[:events]
    kind = "sqlite" if source_url.startswith("sqlite") else "postgres"
    times = []
    for _ in range(repeats):
        store = new_store(kind, "baseline")
        app = Baseline(env=persistence_env(store))
        t = time.perf_counter()
        for i in range(0, len(states), batch):
            app.save(*[Posted(state=s) for s in states[i:i + batch]])
        times.append(time.perf_counter() - t)
        app.close()
        drop_store(store)
    return {"events": len(states), "seconds": statistics.median(times), "runs": times}


def child(name: str, src: str | None = None, **args: Any) -> dict[str, Any]:
    # src (--before DIR) or IMPORTBENCH_SRC: measure another copy of src/ (e.g. the code before a
    # change) with the same harness.
    src = src or os.environ.get("IMPORTBENCH_SRC", str(ROOT / "src"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "bench.import_bench", "--task", name, json.dumps(args)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line.removeprefix(RESULT))
    raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", nargs=2)
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--stores", default="sqlite")
    ap.add_argument("--project", action="store_true", help="include the projector's catch-up (end to end)")
    ap.add_argument("--repeat", type=int, default=1, help="imports per store (median reported)")
    ap.add_argument("--baseline-lines", type=int, default=200_000, help="events in the Application.save baseline")
    ap.add_argument("--save-batch", type=int, default=10_000)
    ap.add_argument("--baseline-repeat", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--profile", action="store_true", help="pyinstrument the (first) import; text to var/importbench/")
    ap.add_argument("--beside", choices=("on", "off", "both"), default="on",
                    help="with --project: the read model built beside the staging (ADR 0027), after the write, or "
                         "both alternately in each repeat (medians of each and their ratio)")
    ap.add_argument("--before", metavar="DIR",
                    help="another checkout (e.g. `git worktree add /tmp/before REV`): its src/ imported in turn "
                         "with this one's, A B B A ... (--repeat pairs), each on a fresh store; medians of "
                         "each, their ratio, and how many pairs this checkout won")
    a = ap.parse_args()
    if a.task:
        fn = {"import": task_import, "baseline": task_baseline}[a.task[0]]
        print(RESULT + json.dumps(fn(**json.loads(a.task[1]))), flush=True)
        return
    WORKDIR.mkdir(parents=True, exist_ok=True)
    path = dataset(a.scale)
    mode = "end to end (with projection)" if a.project else "write path (project=False)"
    print(f"dataset {path} ; {mode}", flush=True)
    modes: list[Any] = {"on": [True], "off": [False], "both": [True, False]}[a.beside if a.project else "off"]
    if a.before:
        if len(modes) > 1:
            ap.error("--before alternates two checkouts: give --beside on or off, not both")
        before_src = Path(a.before).resolve() / "src"
        if not before_src.is_dir():
            ap.error(f"--before {a.before}: no src/ there")
        modes = [(modes[0], None), (modes[0], str(before_src))]  # this checkout first, then the other
    else:
        modes = [(m, None) for m in modes]
    for kind in a.stores.split(","):
        runs, keep = [], None
        by_mode: dict[Any, list[float]] = {m: [] for m in modes}
        for i, mode_ in ((r, m) for r in range(a.repeat) for m in (modes if r % 2 == 0 else modes[::-1])):  # alternated: drift evens out
            beside, src = mode_
            url = new_store(kind, f"import-{a.scale}")
            prof = str(WORKDIR / f"profile-{a.scale}-{kind}.txt") if a.profile and i == 0 else None
            r = child("import", src=src, url=url, path=str(path), project=a.project, profile=prof, beside=beside)
            if mode_ == modes[0]:
                runs.append(r)
            by_mode[mode_].append(r["seconds"])
            if a.before:
                label = " (before)" if src else " (this checkout)"
            else:
                label = "" if len(modes) == 1 else (" (beside)" if beside else " (after)")
            print(f"  {kind} import run {i + 1}{label}: {r['events']:,} ev in {r['seconds']:.1f} s = "
                  f"{r['events'] / r['seconds']:,.0f} ev/s ({r['lines'] / r['seconds']:,.0f} lines/s), "
                  f"peak RSS {r['rss_peak_kb'] / 1024:,.0f} MB; CPU {r['cpu_seconds']:.1f} s "
                  f"(+ {r['children_cpu_seconds']:.1f} s in the parsing and projecting processes)", flush=True)
            if keep is None:
                keep = url
            else:
                drop_store(url)
        if a.before:
            this, before = by_mode[modes[0]], by_mode[modes[1]]
            won = sum(t < b for t, b in zip(this, before, strict=True))
            print(f"{kind}: this checkout {statistics.median(this):.1f} s, before ({a.before}) "
                  f"{statistics.median(before):.1f} s (medians of {len(this)} pairs, alternated): "
                  f"{statistics.median(before) / statistics.median(this):.2f}x; this checkout faster in {won} of "
                  f"{len(this)} pairs", flush=True)
        elif len(modes) == 2:
            on, off = statistics.median(by_mode[modes[0]]), statistics.median(by_mode[modes[1]])
            print(f"{kind}: read model built beside the staging {on:.1f} s, after the write {off:.1f} s "
                  f"(medians of {len(by_mode[modes[0]])}): {off / on:.2f}x", flush=True)
        secs = statistics.median(r["seconds"] for r in runs)
        ev = runs[0]["events"]
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        line = (f"{kind}: import {ev:,} ev, median {secs:.1f} s = {ev / secs:,.0f} ev/s "
                f"(importing process's CPU {cpu:.1f} s); "
                f"peak RSS max {max(r['rss_peak_kb'] for r in runs) / 1024:,.0f} MB")
        if not a.no_baseline:
            b = child("baseline", source_url=keep, events=min(a.baseline_lines, ev), batch=a.save_batch,
                      repeats=a.baseline_repeat)
            brate = b["events"] / b["seconds"]
            line += (f" | baseline Application.save ×{a.save_batch}: {brate:,.0f} ev/s "
                     f"({b['events']:,} ev, median of {len(b['runs'])}) | ratio {ev / secs / brate:.2f}")
        print(line, flush=True)
        drop_store(keep)


if __name__ == "__main__":
    main()
