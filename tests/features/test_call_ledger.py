"""The call ledger (issue 18): every command that calls Caspio records what it spent, and
`caspio-sync usage` equals the calls the emulator counted (its own counter is the oracle, never
our stats); the ledger survives a fresh machine through the destination, counts only the
current quota period, and the monthly budget stops `run` before the call past it."""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.cli import main
from pipelines.commands import EXIT_BUDGET_REACHED
from pipelines.usage import run_usage
from sources.caspio import LEDGER_FILE, LEDGER_TABLE, LedgerEntry, append_entries, read_entries
from tests.helpers import (
    CONTACTS_AND_NOTES,
    duckdb_tables,
    use_emulator_credentials,
    with_password,
)

ROOT = Path(__file__).resolve().parents[2]
ENTRY_KEYS = {"id", "time", "host", "command", "table", "kind", "count"}


def _ledger(tmp_path: Path, pipeline: str = "caspio") -> Path:
    """Where the ledger of a pipeline lives (the conftest's DLT_DATA_DIR)."""
    return tmp_path / "dlt_data" / "pipelines" / pipeline / LEDGER_FILE


def _usage(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["usage", "--json", *args]) == 0
    return dict(json.loads(capsys.readouterr().out))


def _python_source_run(emu: Any, tmp_path: Path, duckdb_file: Path) -> None:
    """``pipeline.run(caspio())`` in a process of its own, as a notebook would: its calls
    reach the ledger without any command around it."""
    script = (
        "import dlt\n"
        "from sources.caspio import caspio\n"
        f"p = dlt.pipeline('caspio', destination=dlt.destinations.duckdb({str(duckdb_file)!r}),"
        " dataset_name='caspio')\n"
        "p.run(caspio(tables=['Contacts']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_usage_equals_the_emulator_across_every_command(
    caspio_emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES)
    use_emulator_credentials(monkeypatch, emu)
    target = ["--duckdb-file", str(tmp_path / "sync.duckdb")]
    assert main(["run", "--no-progress", *target]) == 0
    assert main(["check"]) == 0
    assert main(["plan", *target]) == 0
    emu.delete("Notes", "PK_ID = 2")
    assert main(["reconcile", *target]) == 0
    _python_source_run(emu, tmp_path, tmp_path / "sync.duckdb")
    assert main(["run", "--no-progress", *target]) == 0

    usage = _usage(capsys, *target)
    assert usage["calls_this_period"] == emu.calls > 0
    assert usage["quota"] is None and usage["projected"] >= usage["calls_this_period"]
    assert set(usage["by_command"]) == {"run", "check", "plan", "reconcile", "python"}

    # what each entry holds, and no secret anywhere
    text = _ledger(tmp_path).read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert all(set(e) == ENTRY_KEYS for e in entries)
    assert {e["host"] for e in entries} == {emu.base_url.split("//")[1]}
    for secret in (emu.client_secret, emu.client_id):
        assert secret not in text
        assert secret not in json.dumps(usage)


def test_failed_runs_and_refused_calls_are_recorded(
    caspio_emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Retried 5xx, 429 and reset calls count, and so does a run that fails on the quota."""
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES, retry_after=0)
    use_emulator_credentials(monkeypatch, emu)
    target = ["--duckdb-file", str(tmp_path / "sync.duckdb")]
    emu.script_faults(["500", "429", "reset", "503"])
    assert main(["run", "--no-progress", *target]) == 0
    assert sum(1 for e in emu.log if e.fault) == 4
    emu.configure(quota=3)  # the run fails on the 4th call with Caspio's quota answer
    emu.update("Contacts", "PK_ID <= 2", {"Score": 7})
    assert main(["run", "--no-progress", *target]) == 1
    assert any(e.status == 403 for e in emu.log)
    emu.configure(quota=None)
    assert _usage(capsys, *target)["calls_this_period"] == emu.calls


def _append_in_a_process(path: Path, calls: int) -> subprocess.Popen[bytes]:
    """A process whose client-side ledger counts ``calls`` calls, flushing as it goes."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sources.caspio import CallLedger\n"
        f"ledger = CallLedger(Path({str(path)!r}), 'c0abc123.caspio.com')\n"
        f"for i in range({calls}):\n"
        "    ledger('records', f'T{i % 7}')\n"
        "    if i % 3 == 0:\n"
        "        ledger.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], env=env)


def test_parallel_processes_lose_no_entry(tmp_path: Path) -> None:
    path = tmp_path / "shared" / LEDGER_FILE
    procs = [_append_in_a_process(path, 600) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    lines = path.read_text().splitlines()
    assert all(json.loads(line)["kind"] == "records" for line in lines)  # no torn line
    assert sum(e.count for e in read_entries(path)) == 3 * 600
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_a_torn_line_spoils_no_other_entry(tmp_path: Path) -> None:
    """A writer killed mid-line leaves half a line: the next append starts on a line of its own."""
    path = tmp_path / LEDGER_FILE
    entry = LedgerEntry("a" * 32, dt.datetime.now(dt.timezone.utc), "h", "run", None, "token", 1)
    append_entries(path, [entry])
    with path.open("a") as f:
        f.write('{"id": "torn", "count"')
    append_entries(path, [dataclasses.replace(entry, id="b" * 32, count=2)])
    assert [(e.id[0], e.count) for e in read_entries(path)] == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_fresh_machine_reads_the_month_from_the_destination(
    caspio_emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES)
    use_emulator_credentials(monkeypatch, emu)
    if kind == "duckdb":
        target = ["--duckdb-file", str(tmp_path / "sync.duckdb")]
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        dataset = request.getfixturevalue("postgres_dataset")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", with_password(dsn))
        target = ["--destination", "postgres", "--dataset", dataset]
    assert main(["run", "--no-progress", *target]) == 0
    emu.update("Contacts", "PK_ID <= 3", {"Score": 1})
    assert main(["run", "--no-progress", *target]) == 0
    spent = emu.calls
    assert _usage(capsys, *target)["calls_this_period"] == spent

    shutil.rmtree(tmp_path / "dlt_data")  # a fresh machine: no pipeline folder, no ledger
    assert not _ledger(tmp_path).exists()
    assert _usage(capsys, *target)["calls_this_period"] == spent
    # and the next run on the fresh machine adds its calls to the month it found
    assert main(["run", "--no-progress", *target]) == 0
    assert _usage(capsys, *target)["calls_this_period"] == emu.calls > spent
    if kind == "duckdb":
        assert duckdb_tables(str(tmp_path / "sync.duckdb"))["contacts"] == 30


def _period_start_oracle(now: dt.datetime, day: int, zone: str) -> dt.datetime:
    """The latest local midnight at or before ``now`` on the period's start day (the month's
    last day when it has fewer days), found by walking back one day at a time."""
    tz = ZoneInfo(zone)
    date = now.astimezone(tz).date()
    while True:
        last = calendar.monthrange(date.year, date.month)[1]
        if date.day == min(day, last):
            return dt.datetime(date.year, date.month, date.day, tzinfo=tz)
        date -= dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "day", "zone"),
    [
        ("2026-03-20T12:00:00+00:00", 15, "America/New_York"),
        ("2026-03-10T12:00:00+00:00", 15, "America/New_York"),  # before the day: last month's
        ("2026-02-28T06:00:00+00:00", 31, "UTC"),  # a short month starts on its last day
        ("2026-03-29T12:00:00+00:00", 30, "UTC"),  # so the period began on February 28
        ("2028-03-05T00:00:00+00:00", 31, "UTC"),  # and in a leap year on February 29
        ("2026-03-01T03:00:00+00:00", 1, "America/Los_Angeles"),  # still February there
        ("2026-11-01T12:00:00+00:00", 1, "Europe/Berlin"),
    ],
)
def test_only_the_current_period_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: str, day: int, zone: str
) -> None:
    monkeypatch.setenv("SOURCES__CASPIO__QUOTA_PERIOD_START_DAY", str(day))
    monkeypatch.setenv("SOURCES__CASPIO__QUOTA_TIME_ZONE", zone)
    at = dt.datetime.fromisoformat(now)
    start = _period_start_oracle(at, day, zone)
    second = dt.timedelta(seconds=1)
    times = {
        "before the start": (start - second, 1),
        "at the start": (start, 10),
        "inside": (start + (at - start) / 2, 100),
        "now": (at, 1000),
        "long before": (start - dt.timedelta(days=40), 10000),
    }
    entries = [
        LedgerEntry(uuid.uuid4().hex, when, "h.caspio.com", "run", "T", "records", count)
        for when, count in times.values()
    ]
    append_entries(_ledger(tmp_path), entries)
    usage = run_usage(now=at)
    assert usage.calls_this_period == 10 + 100 + 1000
    assert usage.period_start == start
    assert usage.period_end.date() > at.astimezone(ZoneInfo(zone)).date()


def test_monthly_budget_stops_before_the_call_past_it(
    caspio_emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES, generate={"Big": 2500})
    use_emulator_credentials(monkeypatch, emu)
    target = ["--duckdb-file", str(tmp_path / "sync.duckdb")]
    assert main(["plan", *target]) == 0
    already = emu.calls  # this period's calls so far: the plan's
    remaining = 6  # fewer than the run needs (listings, then /fields and pages per table)
    monkeypatch.setenv("SOURCES__CASPIO__MONTHLY_CALL_BUDGET", str(already + remaining))
    capsys.readouterr()
    assert main(["run", "--no-progress", *target]) == EXIT_BUDGET_REACHED
    err = capsys.readouterr().err
    assert emu.calls - already == remaining  # stopped before call N + 1: never sent
    resets = _next_period_start(dt.datetime.now(dt.timezone.utc))
    line = [ln for ln in err.splitlines() if "monthly call budget reached" in ln]
    assert len(line) == 1 and f"resets on {resets.isoformat()}" in line[0], err
    assert f"{already + remaining:,} of monthly_call_budget" in line[0]
    assert "big" not in duckdb_tables(str(tmp_path / "sync.duckdb"))  # no half table

    monkeypatch.setenv("SOURCES__CASPIO__MONTHLY_CALL_BUDGET", "1000")
    assert main(["run", "--no-progress", *target]) == 0
    assert duckdb_tables(str(tmp_path / "sync.duckdb")) == {
        "big": 2500,
        "contacts": 30,
        "notes": 12,
    }
    with duckdb.connect(str(tmp_path / "sync.duckdb"), read_only=True) as conn:
        copied = conn.execute(f"select count(*) from caspio.{LEDGER_TABLE}").fetchone()
    assert copied is not None and copied[0] > 0  # the ledger's copy, next to the data
    assert _usage(capsys, *target)["calls_this_period"] == emu.calls


def _next_period_start(now: dt.datetime) -> dt.date:
    """The first day of next month (UTC): where a period starting on day 1 resets."""
    return (now.date().replace(day=28) + dt.timedelta(days=4)).replace(day=1)
