"""SIGKILL during extract and during load (issue 5, item 4), and the monthly quota running out
mid-run (item 5). The killed sync runs in a child process against the in-test emulator; the
recovery run uses the same pipelines dir and DuckDB file, as the next scheduled run would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dlt
import pytest

from sources.caspio import exception_chain

from .harness import (
    CHILD,
    ITEMS,
    NOTES,
    LineReader,
    assert_parity,
    child_env,
    duckdb_rows,
    duckdb_table_names,
    make_client,
    sync,
)

# Notes is appended by PK_ID (an insert-only table): the disposition a replayed load package
# would duplicate if a job ran twice.
OPTIONS: dict[str, Any] = {
    "page_size": 20,
    "table_options": {NOTES: {"write_disposition": "append"}},
}


def start_child(
    emulator: Any, workdir: Path, **env: str
) -> tuple[subprocess.Popen[str], LineReader]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(workdir), json.dumps(OPTIONS)],
        env=child_env(emulator, workdir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=workdir,
    )
    return proc, LineReader(proc.stdout)


def sigkill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL


def change_rows(emulator: Any) -> None:
    """Inserts, updates (through the store: not billed) for the run after the first."""
    for i in range(45):
        emulator.insert(ITEMS, {"Name": f"new item {i}", "Qty": i, "Active": True})
        emulator.insert(NOTES, {"Title": f"new note {i}", "Score": 1000 + i})
    emulator.update(ITEMS, "PK_ID <= 30", {"Qty": 424242})


@pytest.mark.scenario("crash", "SIGKILL during extract (first run), then the next run")
def test_sigkill_during_extract_then_next_run_has_parity(emulator: Any, tmp_path: Path) -> None:
    """The child is killed after 8 record pages were served; the next run loads everything,
    value for value, without duplicates."""
    emulator.configure(latency_ms=30)
    proc, _ = start_child(emulator, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while sum(1 for e in emulator.log if "/records" in e.path) < 8:
            assert proc.poll() is None, "the child finished before it could be killed"
            assert time.monotonic() < deadline, "the child never reached extraction"
            time.sleep(0.01)
        sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    emulator.configure(latency_ms=0)
    assert not duckdb_table_names(tmp_path / "sync.duckdb")  # nothing half-loaded
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])
    change_rows(emulator)
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])


@pytest.mark.scenario("crash", "SIGKILL during load (job started / rows copied, not recorded)")
@pytest.mark.parametrize("moment", ["START", "DONE"])
def test_sigkill_during_load_then_next_run_has_parity(
    emulator: Any, tmp_path: Path, moment: str
) -> None:
    """A second (incremental) run is killed while loading Notes: either when its copy job has
    started, or right after the rows were copied into DuckDB but before dlt recorded the job as
    complete. Rows change again; the next run finishes the package and syncs the new changes:
    parity, no duplicated PK_ID (Notes is appended by PK_ID, so a replayed copy job would
    duplicate rows unless the load is idempotent)."""
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])
    change_rows(emulator)
    proc, reader = start_child(emulator, tmp_path, CHILD_MARK_LOAD="1")
    try:
        marker = f"LOAD_COPY_{moment} notes"
        assert reader.wait_for(marker, timeout=90), f"no {marker!r}: {reader.lines}"
        sigkill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    pending = list((tmp_path / "pipelines" / "caspio" / "load" / "normalized").glob("*"))
    assert pending, "the kill did not leave a load package behind (not during load?)"
    # Caspio moves on while the job is down: the next run must finish the interrupted package
    # *and* sync what changed since (not only replay the package)
    emulator.insert(NOTES, {"Title": "after the crash", "Score": -1})
    emulator.update(ITEMS, "PK_ID = 100", {"Qty": -31337})
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])


# ------------------------------------------------------------------------------------------------
# the monthly quota


def _items_mark(workdir: Path) -> str | None:
    pipeline = dlt.attach("caspio", pipelines_dir=str(workdir / "pipelines"))
    sources = pipeline.state.get("sources", {})
    for source_state in sources.values():
        resources = source_state.get("resources", {})
        for name, res in resources.items():
            if name.lower() == ITEMS.lower():
                return (res.get("cursor") or {}).get("value")
    return None


@pytest.mark.scenario("quota", "monthly quota exhausted mid-run (403 ApiCallsLimitExceeded)")
def test_quota_exhausted_mid_run_keeps_loaded_data_and_resumes(
    emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run 1 loads everything. Rows change; run 2 (the CLI, as scheduled) hits the quota after
    6 calls: one clear line, exit 1, no retry of the 403, the destination keeps run 1's rows and
    the Items cursor does not move. With the quota reset, run 3 resumes to parity."""
    from pipelines.cli import main

    sync(emulator, tmp_path, **OPTIONS)
    before = {t: duckdb_rows(tmp_path / "sync.duckdb", t) for t in (ITEMS, NOTES)}
    mark_before = _items_mark(tmp_path)
    assert mark_before is not None
    change_rows(emulator)

    for key, value in {
        "SOURCES__CASPIO__CREDENTIALS__CLIENT_ID": emulator.client_id,
        "SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": emulator.client_secret,
        "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL": emulator.base_url,
        "SOURCES__CASPIO__PAGE_SIZE": "20",
        "SOURCES__CASPIO__TABLE_OPTIONS": json.dumps(OPTIONS["table_options"]),
    }.items():
        monkeypatch.setenv(key, value)
    emulator.configure(quota=6)
    emulator.reset_log()
    capsys.readouterr()
    code = main(
        [
            "run",
            "--duckdb-file",
            str(tmp_path / "sync.duckdb"),
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("caspio-sync: error:")]
    assert len(errors) == 1, err
    assert "quota" in errors[0].lower() and "ApiCallsLimitExceeded" in errors[0], errors[0]
    refused = [e for e in emulator.log if e.status == 403]
    asked = [(e.path, e.query) for e in refused]
    # calls in flight when the quota ran out are each refused once; none is sent again
    assert refused and len(set(asked)) == len(asked), f"the quota 403 was retried: {asked}"

    after = {t: duckdb_rows(tmp_path / "sync.duckdb", t) for t in (ITEMS, NOTES)}
    assert after == before, "a failed run changed the destination"
    mark_after = _items_mark(tmp_path)
    assert mark_after == mark_before, (mark_before, mark_after)

    emulator.configure(quota=None)
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])


@pytest.mark.scenario("quota", "quota exhausted during the first run, then the next run")
def test_quota_exhausted_on_first_run_then_resume(emulator: Any, tmp_path: Path) -> None:
    """The first run dies on the quota mid-extract: no partial table is loaded, no state is
    stored; the next run loads everything."""
    from sources.caspio import CaspioQuotaExceededError

    emulator.configure(quota=12)
    with pytest.raises(Exception) as failure:  # dlt wraps it: the chain is checked below
        sync(emulator, tmp_path, client=make_client(emulator), **OPTIONS)
    chain = exception_chain(failure.value)
    quota = [c for c in chain if isinstance(c, CaspioQuotaExceededError)]
    assert quota, f"not a quota failure: {[type(c).__name__ for c in chain]}"
    assert "ApiCallsLimitExceeded" in str(quota[0]) or "quota" in str(quota[0]).lower()
    assert _items_mark(tmp_path) is None, "a failed first run stored a cursor"
    for table in duckdb_table_names(tmp_path / "sync.duckdb"):
        rows = duckdb_rows(tmp_path / "sync.duckdb", table)
        assert rows == [] or table == "notes", f"{table} partially loaded: {len(rows)} rows"
    emulator.configure(quota=None)
    sync(emulator, tmp_path, **OPTIONS)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])
