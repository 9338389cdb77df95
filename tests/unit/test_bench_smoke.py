"""A tiny run of the performance harness: small scale, SQLite only, a few seconds."""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_harness_prints_its_table(tmp_path):
    from bench.run import main

    out = io.StringIO()
    rows = main(["--scale", "small", "--stores", "sqlite", "--repeat", "1", "--only", "1,2,5,6",
                 "--baseline-lines", "500", "--workdir", str(tmp_path)], out=out)
    text = out.getvalue()
    assert "| #" in text and "| measure" in text
    measures = {(r.no, r.store) for r in rows}
    assert {("1", "sqlite"), ("2", "sqlite"), ("6", "sqlite"), ("5", "-")} <= measures
    imp = next(r for r in rows if r.no == "1")
    assert "ev/s" in imp.result and imp.ratio != "-", imp
    assert not list(tmp_path.glob("bench-*.sqlite")), "the harness drops its stores"


def test_the_interpreter_benchmark_times_each_interpreter_given(capsys):
    from bench.interpreter_bench import main

    assert main([sys.executable, sys.executable, "--rounds", "1", "--size", "2000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith(sys.executable) and "ms CPU" in line for line in lines)
    assert "(1.00x the first)" in lines[0]


def test_the_import_benchmark_alternates_another_checkout(tmp_path):
    """`bench.import_bench --before DIR` imports with this checkout's src/ and DIR's in turn and
    reports both medians and the pairs won (ADR 0038); DIR without src/ is refused by name."""
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bench.import_bench", "--scale", "small", "--stores", "sqlite",
                               "--no-baseline", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)

    done = run("--repeat", "2", "--before", str(ROOT))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert sum("(this checkout)" in line for line in lines) == 2
    assert sum("(before)" in line for line in lines) == 2
    summary = next(line for line in lines if "medians of 2 pairs" in line)
    assert "this checkout faster in" in summary and "of 2 pairs" in summary
    refused = run("--before", str(tmp_path))
    assert refused.returncode == 2 and "no src/ there" in refused.stderr


def test_the_import_benchmark_alternates_the_read_model_beside_and_after():
    """`--beside both` alternates the read model built beside the staging with after the write
    and prints both medians and their ratio."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "bench.import_bench", "--scale", "small", "--stores", "sqlite",
                           "--no-baseline", "--project", "--beside", "both", "--repeat", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert sum("(beside)" in line for line in lines) == 2 and sum("(after)" in line for line in lines) == 2
    assert any("read model built beside the staging" in line and "(medians of 2)" in line for line in lines)
