"""A scheduled pipeline's folder does not grow with its runs, nor keep copies of the data.

dlt keeps every loaded package with the files it loaded. After each sync only the newest
``KEEP_LOADED_PACKAGES`` packages remain, none with a loaded file; a user who configured
``load.delete_completed_jobs`` keeps dlt's own behaviour. The oracle for which packages are
the newest is the load ids the runs reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines import cleanup
from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioCredentials
from tests.helpers import duckdb_tables

KEEP = 3


def _sync(emulator: Any, pipelines_dir: Path) -> list[str]:
    """One sync of Customers; the load ids it reported."""
    credentials = CaspioCredentials(
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        integration_url=emulator.base_url,
    )
    report = run_sync(
        duckdb_file="folder.duckdb",
        pipelines_dir=str(pipelines_dir),
        credentials=credentials,
        tables=["Customers"],
    )
    assert report.load_info is not None
    jobs = [job for p in report.load_info.load_packages for job in p.jobs["completed_jobs"]]
    assert jobs, "the report lost its jobs: retried_loads.py reads them"
    return list(report.load_info.loads_ids)


def _loaded(pipelines_dir: Path) -> Path:
    return pipelines_dir / "caspio" / "load" / "loaded"


def _loaded_files(pipelines_dir: Path) -> list[Path]:
    return [p for p in _loaded(pipelines_dir).glob("*/completed_jobs/*") if p.is_file()]


def test_only_the_newest_packages_stay_and_no_loaded_file(
    caspio_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOAD__DELETE_COMPLETED_JOBS", raising=False)
    monkeypatch.setattr(cleanup, "KEEP_LOADED_PACKAGES", KEEP)
    pipelines_dir = tmp_path / "pipelines"
    load_ids: list[str] = []
    for _ in range(3):
        load_ids += _sync(caspio_emulator, pipelines_dir)
        assert _loaded_files(pipelines_dir) == []
    assert len(load_ids) > KEEP, "too few packages to see any removed"
    kept = sorted(p.name for p in _loaded(pipelines_dir).iterdir())
    assert kept == sorted(load_ids, key=float)[-KEEP:]
    rows = len(caspio_emulator.table_rows("Customers"))
    assert duckdb_tables("folder.duckdb")["customers"] == rows


def test_a_configured_choice_is_dlts_and_the_next_command_prunes_what_it_kept(
    caspio_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "KEEP_LOADED_PACKAGES", KEEP)
    pipelines_dir = tmp_path / "pipelines"
    monkeypatch.setenv("LOAD__DELETE_COMPLETED_JOBS", "false")
    load_ids = _sync(caspio_emulator, pipelines_dir) + _sync(caspio_emulator, pipelines_dir)
    assert {p.name for p in _loaded(pipelines_dir).iterdir()} == set(load_ids)
    assert _loaded_files(pipelines_dir), "dlt keeps the loaded files when told to"

    monkeypatch.delenv("LOAD__DELETE_COMPLETED_JOBS")
    load_ids += _sync(caspio_emulator, pipelines_dir)
    assert _loaded_files(pipelines_dir) == []
    kept = sorted(p.name for p in _loaded(pipelines_dir).iterdir())
    assert kept == sorted(load_ids, key=float)[-KEEP:]
