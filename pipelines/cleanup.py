"""No orphan files: what a stopped or failed run left in the pipeline's folder is removed.

dlt extracts into a folder of its own per run (``normalize/<random id>/``) and renames it to
``normalize/extracted/`` only when the extract succeeds. An extract that fails or is
interrupted leaves that folder behind with every page read so far (tens of MB for a big
table), and no later run looks at it again. A package that did reach ``extracted`` or the
load stage is not an orphan: ``run_sync`` finishes it first (``pipeline.has_pending_data``).
Called before each run (a run killed with SIGKILL cleans up nothing itself) and after a
failed one. Two runs of one pipeline at the same time are not supported (by dlt either).

Loaded packages stay as a record, not as a copy of every load's data (``prune_loaded_packages``).
dlt keeps every loaded package with the files it loaded: each Parquet file a sync wrote, a copy of
the rows. A scheduled pipeline's folder then grows without end (a daily full sync adds a copy of its
tables every day, docs/lifecycle.md) and keeps copies of the account's data beside the destination.
So each command starts, and each sync ends, by removing the loaded files of every package (as dlt's
``load.delete_completed_jobs`` would) and every package but the newest ``KEEP_LOADED_PACKAGES``,
whose metadata stay for inspection (``dlt pipeline <name> load-package``); a failed job's file stays
while its package is kept. A user who set ``load.delete_completed_jobs`` (either way) decides alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dlt
from dlt.common.storages import NormalizeStorage
from dlt.common.storages.load_package import PackageStorage
from dlt.common.storages.load_storage import LoadStorage
from dlt.pipeline.pipeline import Pipeline

STATUS_TEMP_SUFFIX = ".tmp"


def remove_orphans(pipeline: Pipeline) -> list[Path]:
    """Delete abandoned extract folders and half-written files of ``pipeline``; returns them."""
    working = Path(pipeline.working_dir)
    removed: list[Path] = []
    normalize = working / "normalize"
    if normalize.is_dir():
        for entry in normalize.iterdir():
            if entry.is_dir() and entry.name != NormalizeStorage.EXTRACTED_FOLDER:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    if working.is_dir():
        for entry in working.glob(f"*{STATUS_TEMP_SUFFIX}"):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


KEEP_LOADED_PACKAGES = 10
"""Loaded packages whose metadata a pipeline keeps (schema, state, job names and timings)."""


def prune_loaded_packages(pipeline: Pipeline) -> None:
    """Removes the loaded data files of ``pipeline``'s packages and its older packages."""
    if dlt.config.get("load.delete_completed_jobs") is not None:
        return
    loaded = Path(pipeline.working_dir) / "load" / LoadStorage.LOADED_FOLDER
    if not loaded.is_dir():
        return
    packages = sorted((p for p in loaded.iterdir() if p.is_dir()), key=_load_order, reverse=True)
    for package in packages[KEEP_LOADED_PACKAGES:]:
        shutil.rmtree(package, ignore_errors=True)
    for package in packages[:KEEP_LOADED_PACKAGES]:
        jobs = package / PackageStorage.COMPLETED_JOBS_FOLDER
        for job in jobs.iterdir() if jobs.is_dir() else ():
            if job.is_file():
                job.unlink(missing_ok=True)


def _load_order(package: Path) -> tuple[float, float]:
    """dlt names a package by the time it began (``1796338768.27322``); its folder's time
    orders any other name."""
    try:
        return float(package.name), 0.0
    except ValueError:
        return 0.0, package.stat().st_mtime
