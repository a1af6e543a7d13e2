"""`caspio-sync status` (zero API calls, text and JSON) and progress output (issue 15)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines.progress import TableProgress
from tests.reliability.harness import ITEMS, NOTES

from .conftest import ROOT, cli, emulator_env


def test_status_reads_state_and_destination_without_api_calls(emulator: Any, work: Path) -> None:
    env = emulator_env(emulator, work)
    target = ["--duckdb-file", str(work / "sync.duckdb")]
    before_any = cli(["status", *target], env, work)
    assert before_any.code == 0 and "no run yet" in before_any.out

    assert cli(["run", *target, "--quiet"], env, work).code == 0
    emulator.reset_log()
    # no Caspio credentials at all: status must not need them
    bare = {k: v for k, v in env.items() if not k.startswith("SOURCES__CASPIO__CREDENTIALS")}
    text = cli(["status", *target], bare, work)
    as_json = cli(["status", "--json", *target], bare, work)
    assert emulator.calls == 0, [e.path for e in emulator.log]
    assert text.code == 0 and as_json.code == 0, text.err + as_json.err
    lines = {line.split()[0]: line for line in text.out.splitlines() if line.split()}
    assert "1,200" in lines[ITEMS] and " ok " in lines[ITEMS] and "Updated >" in lines[ITEMS]
    assert "60" in lines[NOTES]
    tables = {t["name"]: t for t in json.loads(as_json.out)["tables"]}
    assert tables[ITEMS]["rows"] == 1200 and tables[NOTES]["rows"] == 60
    assert tables[ITEMS]["last_outcome"] == "ok" and tables[ITEMS]["calls_last_run"] >= 2
    assert tables[ITEMS]["cursor"]["field"] == "Updated"
    assert json.loads(as_json.out)["last_run"]["outcome"] == "ok"

    # a failed run is recorded as such, with its one-line cause
    failed = cli(
        ["run", *target], {**env, "SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": "nope"}, work
    )
    assert failed.code == 1
    after = json.loads(cli(["status", "--json", *target], bare, work).out)
    assert after["last_run"]["outcome"] == "failed"
    assert "CLIENT_SECRET" in after["last_run"]["error"]


def test_progress_on_a_log_and_quiet(
    caspio_emulator_factory: Any, account: dict[str, Any], work: Path
) -> None:
    """Not a terminal: a line per table while it is read (rows against the total, pages,
    calls, rate, ETA) and one when done; none of dlt's collector lines; --quiet: the report only."""
    emulator = caspio_emulator_factory(dataset=account, latency_ms=60)
    env = emulator_env(
        emulator, work, SOURCES__CASPIO__PAGE_SIZE="50", SOURCES__CASPIO__MAX_WORKERS="1"
    )
    argv = ["run", "--duckdb-file", str(work / "sync.duckdb")]
    done = cli([*argv, "--progress-interval", "0.5"], env, work)
    assert done.code == 0, done.err
    items = [ln for ln in done.err_lines if ln.startswith(f"caspio-sync: {ITEMS}: ")]
    running = [ln for ln in items if "of 1,200 rows (" in ln]
    assert running, done.err
    assert "page " in running[-1] and " calls" in running[-1] and "rows/s" in running[-1]
    assert "ETA" in running[-1]
    assert items[-1].startswith(f"caspio-sync: {ITEMS}: done, 1,200 rows in 24 pages")
    notes_done = [ln for ln in done.err_lines if ln.startswith(f"caspio-sync: {NOTES}: done")]
    assert len(notes_done) == 1
    for noise in ("Rate:", "CPU usage", "Time: 0.00s", "WARNING"):
        assert noise not in done.err
    assert "1,200" in done.out

    emulator.configure(latency_ms=0)
    quiet = cli([*argv, "--quiet"], env, work)
    assert quiet.code == 0 and quiet.err == "", quiet.err
    assert "Caspio API calls" in quiet.out


def test_no_rate_over_a_meaningless_time() -> None:
    table = TableProgress("T", started=100.0, total=1000, rows=1000, calls=1, pages=1)
    table.done, table.ended = True, 100.001
    assert "rows/s" not in table.describe(100.001, 1000)
    table.ended = 102.0
    assert "500 rows/s" in table.describe(102.0, 1000)


def test_live_line_on_a_terminal(emulator: Any, work: Path) -> None:
    """stderr a terminal: one line rewritten in place, cleared before the report. One call in
    flight: Items' 24 pages at 60 ms each take over a second, so the 0.5 s ticker shows its rows
    (with up to 8 in flight the whole extract could fall between two ticks)."""
    env = emulator_env(
        emulator, work, SOURCES__CASPIO__PAGE_SIZE="50", SOURCES__CASPIO__MAX_WORKERS="1"
    )
    emulator.configure(latency_ms=60)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--duckdb-file", str(work / "s.duckdb")],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    tty = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, tty
    assert "\r" in tty and "tables done" in tty and "rows" in tty
    counts = [tuple(map(int, m)) for m in re.findall(r"(\d+)/(\d+) tables done", tty)]
    assert counts and all(done <= total for done, total in counts), counts
    assert tty.endswith("\r\x1b[K") or "\r\x1b[K" in tty[-20:], repr(tty[-200:])
    assert "caspio-sync: " not in tty  # no log lines on a terminal
    assert b"Caspio API calls" in out
    assert str(ROOT)


def test_the_ledgers_extract_does_not_shrink_the_count_of_tables() -> None:
    """The call ledger is extracted after the tables, as a source of one resource: the live
    line read "2/1 tables done" until the count kept the run's largest."""
    import io

    from pipelines.progress import RunMonitor

    monitor = RunMonitor(io.StringIO(), mode="live")
    monitor.update("Resources", 0, total=2)
    monitor.update("Resources", 0, total=1)
    assert monitor.resources == 2
