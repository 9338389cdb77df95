"""How fast each given Python interpreter runs the kind of Python this service is made of
(ADR 0030): frozen dataclasses, dicts, sorting, dates, JSON. Alternates the interpreters, each
in a new process, and prints each one's median CPU time and the ratio to the first.

    python -m bench.interpreter_bench /usr/bin/python3.11 ~/.pyenv/versions/3.11.7/bin/python3.11

Only the standard library is used, so any interpreter can run it without the project installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

WORK = r"""
import json, sys, time
from dataclasses import dataclass
from datetime import date, timedelta

@dataclass(frozen=True)
class Fact:
    ref: str
    grade: int
    on: date
    data: dict

def work():
    day, out = date(2011, 8, 31), []
    for i in range(int(sys.argv[1])):
        f = Fact(f"#{i}", i % 4, day - timedelta(days=i % 400), {"k": i, "refs": [str(i), "x"]})
        out.append((f.ref, f.grade, f.on.isoformat(), sorted(f.data)))
    out.sort(key=lambda r: (r[2], r[0]))
    return len(json.dumps(out[: len(out) // 5]))

best = []
for _ in range(5):
    t = time.process_time()
    work()
    best.append(time.process_time() - t)
print(sorted(best)[2])
"""


def run(python: str, size: int) -> float:
    out = subprocess.run([python, "-c", WORK, str(size)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pythons", nargs="*", default=[sys.executable])
    ap.add_argument("--rounds", type=int, default=3, help="alternations of all the interpreters")
    ap.add_argument("--size", type=int, default=100_000, help="facts made in each of the 5 passes")
    a = ap.parse_args(argv)
    times: dict[str, list[float]] = {p: [] for p in a.pythons}
    for _ in range(a.rounds):
        for p in a.pythons:
            times[p].append(run(p, a.size))
    first = statistics.median(times[a.pythons[0]])
    for p in a.pythons:
        m = statistics.median(times[p])
        version = subprocess.run([p, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                                 text=True).stdout.strip()
        print(f"{p:50} {version:8} median {m * 1000:7.1f} ms CPU  ({first / m:.2f}x the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
