"""DuckDB's pool starts small and grows only for a load that needs it.

A load that runs out of memory under our own limit is loaded again with the next limit: the
sync succeeds and every row is there once. A limit the user set is theirs: it is never grown,
and its out-of-memory error reaches them."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import duckdb_pool
from pipelines.caspio_pipeline import run_sync
from pipelines.duckdb_pool import ran_out_of_memory
from sources.caspio import CaspioCredentials

ROWS = 20_000
TOO_SMALL = "8MB"  # enough to open the file and load the rows, too little to merge 20k of them


def _credentials(emu: Any) -> CaspioCredentials:
    return CaspioCredentials(
        client_id=emu.client_id, client_secret=emu.client_secret, integration_url=emu.base_url
    )


def _changed_table(caspio_emulator_factory: Any) -> tuple[Any, CaspioCredentials]:
    """A table synced once, then every row changed in Caspio: the next sync merges them all."""
    emu = caspio_emulator_factory(dataset=None, generate={"T": ROWS})
    credentials = _credentials(emu)
    run_sync(duckdb_file="mem.duckdb", credentials=credentials, tables=["T"])
    assert emu.update("T", "PK_ID > 0", {"Notes": "changed"}) == ROWS
    return emu, credentials


def test_a_merge_out_of_memory_is_loaded_again_with_a_larger_pool(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, credentials = _changed_table(caspio_emulator_factory)
    monkeypatch.setattr(duckdb_pool, "DUCKDB_MEMORY_LIMITS", (TOO_SMALL, "256MB"))
    caplog.set_level(logging.WARNING)

    report = run_sync(duckdb_file="mem.duckdb", credentials=credentials, tables=["T"])

    assert "ran out of memory" in caplog.text and "memory_limit 256MB" in caplog.text
    assert report.rows_by_table == {"t": ROWS}
    # the merge job ran out of memory once under the small pool, not dlt's five times: a
    # job's file counts its retries
    assert report.load_info is not None
    attempts = [
        job.job_file_info.retry_count + 1
        for package in report.load_info.load_packages
        for job in package.jobs["completed_jobs"]
        if job.job_file_info.table_name == "t"
    ]
    assert sorted(attempts) == [1, 2], attempts  # the copy into staging, the merge
    with duckdb.connect("mem.duckdb", read_only=True) as con:
        rows, keys, changed = con.execute(
            "SELECT count(*), count(DISTINCT pk_id), count(*) FILTER (WHERE notes = 'changed')"
            " FROM caspio.t"
        ).fetchone() or (0, 0, 0)
    assert (rows, keys, changed) == (ROWS, ROWS, ROWS)


def test_a_pool_the_user_set_is_never_grown(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, credentials = _changed_table(caspio_emulator_factory)
    monkeypatch.setattr(duckdb_pool, "JOB_RETRY_SECONDS", 0.0)  # tried five times, not slowly
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", f'{{"memory_limit": "{TOO_SMALL}"}}'
    )
    with pytest.raises(PipelineStepFailed) as failed:
        run_sync(duckdb_file="mem.duckdb", credentials=credentials, tables=["T"])
    assert failed.value.step == "load" and ran_out_of_memory(failed.value)


def test_only_duckdb_out_of_memory_counts_as_out_of_memory() -> None:
    try:
        try:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block")
        except duckdb.Error as inner:
            raise RuntimeError("job failed") from inner
    except RuntimeError as wrapped:
        assert ran_out_of_memory(wrapped)
    assert not ran_out_of_memory(RuntimeError("disk full"))


def _insert_then_fail_once(monkeypatch: pytest.MonkeyPatch, table: str) -> list[str]:
    """DuckDB's copy job for ``table`` inserts its file, then raises a transient error once, as
    DuckDB 1.x does when the checkpoint after a committed insert runs out of memory: dlt runs
    the job again. Returns the job files that failed so."""
    from dlt.destinations.exceptions import DatabaseTransientException
    from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

    failed: list[str] = []
    original = DuckDbCopyJob.run

    def run(job: Any) -> None:
        original(job)
        if job.load_table_name == table and not failed:
            failed.append(job.file_name())
            raise DatabaseTransientException(RuntimeError("Out of Memory Error: checkpoint"))

    monkeypatch.setattr(DuckDbCopyJob, "run", run)
    return failed


def test_a_job_run_twice_leaves_no_copies(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The benchmark's green run with 420,000 rows for 400,000, made to happen: the rows of a
    job that dlt ran twice are there once, and the run says so."""
    emu = caspio_emulator_factory(dataset=None, generate={"T": 3_000, "U": 2_000})
    failed = _insert_then_fail_once(monkeypatch, "t")
    caplog.set_level(logging.WARNING)

    report = run_sync(duckdb_file="twice.duckdb", credentials=_credentials(emu), tables=["T", "U"])

    assert failed, "the job never failed: nothing was retried"
    assert "inserted its rows twice" in caplog.text
    assert report.rows_by_table == {"t": 3_000, "u": 2_000}
    with duckdb.connect("twice.duckdb", read_only=True) as con:
        for table, rows in (("t", 3_000), ("u", 2_000)):
            got = con.execute(f"SELECT count(*), count(DISTINCT pk_id) FROM caspio.{table}")
            assert got.fetchone() == (rows, rows), table


def test_rows_that_share_a_key_but_differ_stop_the_run(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies of a job are equal rows; a key with two different rows is something else, and
    no row is removed at a guess."""
    from pipelines.retried_loads import DuplicateRowsError

    emu = caspio_emulator_factory(dataset=None, generate={"T": 500})
    credentials = _credentials(emu)
    run_sync(duckdb_file="differ.duckdb", credentials=credentials, tables=["T"])
    with duckdb.connect("differ.duckdb") as con:
        con.execute("INSERT INTO caspio.t SELECT * REPLACE ('other' AS notes) FROM caspio.t")
    assert emu.update("T", "PK_ID = 1", {"Notes": "changed"}) == 1
    _insert_then_fail_once(monkeypatch, "t")
    with pytest.raises(DuplicateRowsError, match="t holds 499 rows whose key repeats"):
        run_sync(duckdb_file="differ.duckdb", credentials=credentials, tables=["T"])


def _load_workers_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of load jobs at once of every dlt load step from now on, as dlt resolved it."""
    from dlt.load.load import Load

    seen: list[int] = []
    original = Load.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(self.config.workers)

    monkeypatch.setattr(Load, "__init__", init)
    return seen


@pytest.mark.parametrize("configured", [None, "7"], ids=["default", "user-set"])
def test_a_managed_file_is_loaded_by_two_jobs_unless_the_user_says(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, configured: str | None
) -> None:
    """dlt's default of 20 jobs at once ran the pool out of memory (and DuckDB 1.x then loaded
    rows twice); ``[load] workers`` is the user's and stays as set. Either way the setting is
    gone from the environment after the run."""
    emu = caspio_emulator_factory(dataset=None, generate={"T": 100})
    if configured is None:
        monkeypatch.delenv("LOAD__WORKERS", raising=False)
    else:
        monkeypatch.setenv("LOAD__WORKERS", configured)
    seen = _load_workers_seen(monkeypatch)

    run_sync(duckdb_file="workers.duckdb", credentials=_credentials(emu), tables=["T"])

    want = duckdb_pool.DUCKDB_LOAD_WORKERS if configured is None else int(configured)
    assert seen and set(seen) == {want}
    assert os.environ.get("LOAD__WORKERS") == configured


def test_two_syncs_in_threads_keep_the_setting_while_either_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first of two overlapping managed loads to finish leaves the setting to the other,
    which must not mistake it for the user's; the last one removes it."""
    monkeypatch.delenv("LOAD__WORKERS", raising=False)
    setting = duckdb_pool._LoadSetting("load.workers", duckdb_pool.DUCKDB_LOAD_WORKERS)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during: dict[str, str | None] = {}

    def first() -> None:
        with setting.held("a.duckdb"):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with setting.held("b.duckdb"):
            second_in.set()
            first_out.wait(5)
            during["after the first left"] = os.environ.get("LOAD__WORKERS")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert during == {"after the first left": str(duckdb_pool.DUCKDB_LOAD_WORKERS)}
    assert "LOAD__WORKERS" not in os.environ
    with setting.held(None):  # not a managed file: dlt's own setting
        assert "LOAD__WORKERS" not in os.environ


def test_another_transient_error_gets_dlts_five_attempts(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt hands every transient job failure back to the pool loop (so that out of memory
    meets the next pool at once); any other is still tried as often as dlt would, then the
    run fails with it, under the first pool."""
    from dlt.destinations.exceptions import DatabaseTransientException
    from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

    emu = caspio_emulator_factory(dataset=None, generate={"T": 100})
    monkeypatch.setattr(duckdb_pool, "JOB_RETRY_SECONDS", 0.0)
    limits: list[str] = []
    original = DuckDbCopyJob.run

    def run(job: Any) -> None:
        if job.load_table_name != "t":
            original(job)
            return
        limits.append(job._job_client.config.credentials.global_config["memory_limit"])
        raise DatabaseTransientException(RuntimeError("IO Error: the disk is busy"))

    monkeypatch.setattr(DuckDbCopyJob, "run", run)
    with pytest.raises(PipelineStepFailed, match="the disk is busy") as failed:
        run_sync(duckdb_file="busy.duckdb", credentials=_credentials(emu), tables=["T"])
    assert failed.value.step == "load"
    assert limits == [duckdb_pool.DUCKDB_MEMORY_LIMITS[0]] * duckdb_pool.DLT_JOB_ATTEMPTS
