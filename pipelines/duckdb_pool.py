"""DuckDB's memory for a sync: a small buffer pool, grown only for a load that needs more.

A load that runs out of memory under one limit is loaded again with the next: the failed job is
left pending, so the same package finishes, nothing lost; a job DuckDB failed after its insert
was committed leaves copies, which ``retried_loads.py`` removes. DuckDB runs each insert on all
cores, so a managed file is loaded by ``DUCKDB_LOAD_WORKERS`` jobs at once, not dlt's 20, which
together run a small pool out of memory (docs/benchmarks-analysis.md); and a job out of memory
goes to the next pool at once, not after dlt's five attempts under the same one. A user who sets
``[destination.duckdb.credentials.global_config]`` (or its env var) chooses the settings, and no
limit is grown; ``[load] workers`` is the user's too. ``preserve_insertion_order = false`` lets
DuckDB insert a Parquet file on several threads; rows then sit in no particular order, as SQL
promises anyway. A pool gets one thread per ``DUCKDB_MEMORY_PER_THREAD_MB``: threads that share
less spill the row groups they build to disk and write them again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.helpers import retry_schema_update
from dlt.pipeline.pipeline import Pipeline

from sources.caspio import exception_chain

from .retried_loads import remove_retried_duplicates

logger = logging.getLogger(__name__)


SCHEMA_UPDATE_RETRIES = 3
"""Loads again after a schema update that lost a race: parallel tasks of one dataset (the Airflow
DAG's table tasks, all merging the call ledger's copy) can create one table at once, and
PostgreSQL refuses the second (``pg_type_typname_nsp_index``). dlt documents the retry as safe:
it reads the destination again and applies only what is missing."""
DUCKDB_LOAD_WORKERS = 2
"""Load jobs at once into a managed DuckDB file, unless ``load.workers`` is configured."""
DLT_JOB_ATTEMPTS = 5
"""Attempts at a job that raised a transient error other than out of memory: dlt's default
``raise_on_max_retries``, kept when dlt hands each failure back (``_job_attempts``)."""
JOB_RETRY_SECONDS = 1.0
"""Between those attempts, as dlt waits between its own."""
DUCKDB_MEMORY_LIMITS = ("64MB", "128MB", "512MB", "2GB")
"""DuckDB's buffer pool for a load: the first limit, then the next ones only for a load that
ran out of memory under the one before. Why small first: DuckDB's default takes 80% of the
machine's RAM and a load fills it with cached blocks, so the peak grew with the table; 64 MB
loads a million new rows and merges small changes, and keeps a sync's peak under 300 MB. Why
grow: a large merge needs working memory. The measurements are in
docs/benchmarks-analysis.md."""
DUCKDB_MEMORY_PER_THREAD_MB = 64
"""Pool per DuckDB thread. Each thread inserting new rows builds row groups of its own; with two
threads in 64 MB, a 1M-row insert of Caspio-shaped rows spilled them to a temporary file and
wrote 2.9x the database's bytes, for 1.2 more CPU seconds than one thread that wrote them once
(docs/benchmarks-analysis.md, session 12)."""


def duckdb_credentials(duckdb_file: str, memory_limit: str | None = None) -> Any:
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(duckdb_file)
    configured = _configured_duckdb_settings()
    limit = memory_limit or DUCKDB_MEMORY_LIMITS[0]
    credentials.global_config = configured or {
        "memory_limit": limit,
        "preserve_insertion_order": False,
        "threads": threads_for_pool(limit),
    }
    return credentials


def threads_for_pool(memory_limit: str) -> int:
    """DuckDB threads for a pool of ``memory_limit`` (``64MB``, ``2GB``): one per
    ``DUCKDB_MEMORY_PER_THREAD_MB``, at least one, at most one per core."""
    size = re.fullmatch(r"\s*(\d+)\s*([MG])i?B\s*", memory_limit, re.IGNORECASE)
    if size is None:
        raise ValueError(f"not a memory limit in MB or GB: {memory_limit!r}")
    megabytes = int(size[1]) * (1024 if size[2].upper() == "G" else 1)
    return max(1, min(os.cpu_count() or 1, megabytes // DUCKDB_MEMORY_PER_THREAD_MB))


def _configured_duckdb_settings() -> dict[str, Any]:
    # typed, so a JSON object in DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG is parsed too
    configured: Any = dlt.config.get("destination.duckdb.credentials.global_config", dict)
    return dict(configured) if configured else {}


def ran_out_of_memory(failed: BaseException) -> bool:
    """True if DuckDB's out-of-memory error is anywhere in the failure (dlt wraps a job's error
    in its retry exceptions, keeping the original text)."""
    return any(
        "Out of Memory Error" in str(exc) or type(exc).__name__ == "OutOfMemoryException"
        for exc in exception_chain(failed)
    )


class _LoadSetting:
    """One of dlt's ``[load]`` settings, set in the process's environment while any managed
    DuckDB load runs, unless the user configured it.

    Why counted: dlt reads the setting from the process's environment, which threads share.
    Two syncs in threads of one process each need it for as long as they load; the first
    to finish must not take it from the other, and a setting one of them made must not be
    read by the other as the user's own."""

    def __init__(self, key: str, value: int) -> None:
        self.key, self.value = key, value
        self.variable = key.upper().replace(".", "__")
        self._lock = threading.Lock()
        self._holders = 0

    @contextlib.contextmanager
    def held(self, duckdb_file: str | None) -> Iterator[bool]:
        """Yields whether the setting is this module's (``False``: the user's, or no managed
        file)."""
        with self._lock:
            mine = duckdb_file is not None and (
                self._holders > 0 or dlt.config.get(self.key) is None
            )
            if mine:
                if self._holders == 0:
                    os.environ[self.variable] = str(self.value)
                self._holders += 1
        try:
            yield mine
        finally:
            if mine:
                with self._lock:
                    self._holders -= 1
                    if self._holders == 0:
                        os.environ.pop(self.variable, None)


_load_workers = _LoadSetting("load.workers", DUCKDB_LOAD_WORKERS)
_job_attempts = _LoadSetting("load.raise_on_max_retries", 1)
"""dlt tries a job that raised a transient error again, 5 times by default, 1 s apart, before
the load fails. Out of memory under a pool of ours is better met by the next pool at once, so
dlt hands every such failure back here; other transient errors are loaded again here, as
often as dlt would have (``DLT_JOB_ATTEMPTS``)."""


def _job_retry_failed(failed: BaseException) -> bool:
    """True if dlt gave up on a job after a transient error (its retries exhausted)."""
    from dlt.load.exceptions import LoadClientJobRetry

    return any(isinstance(exc, LoadClientJobRetry) for exc in exception_chain(failed))


def run_growing_duckdb_pool(
    pipeline: Pipeline, run: Callable[[], LoadInfo], duckdb_file: str | None
) -> LoadInfo:
    """``run()``; if its load ran out of DuckDB memory under our own limit, the pending package
    is loaded again with the next limit of ``DUCKDB_MEMORY_LIMITS``; one whose schema update
    lost a race with a parallel load, again as it is. Tables with a job that ran twice are then
    rid of the copies it left (``retried_loads.py``)."""
    larger = list(DUCKDB_MEMORY_LIMITS[1:])
    schema_retries = SCHEMA_UPDATE_RETRIES
    job_attempts = DLT_JOB_ATTEMPTS
    load_again: Callable[[], LoadInfo] = pipeline.load  # the pending package, as it stands
    while True:
        try:
            with _load_workers.held(duckdb_file), _job_attempts.held(duckdb_file) as one_attempt:
                load_info = run()
            remove_retried_duplicates(pipeline, load_info)
            return load_info
        except PipelineStepFailed as failed:
            if failed.step == "load" and schema_retries and retry_schema_update()(failed):
                schema_retries -= 1
                logger.warning("Another load changed the dataset's tables at once; loading again")
                run = load_again
                continue
            grow = (
                bool(larger)
                and failed.step == "load"
                and not _configured_duckdb_settings()
                and ran_out_of_memory(failed)
            )
            if not grow and one_attempt and job_attempts > 1 and _job_retry_failed(failed):
                job_attempts -= 1  # what dlt itself would have done with its default
                time.sleep(JOB_RETRY_SECONDS)
                run = load_again
                continue
            if not grow or duckdb_file is None:
                raise
            limit = larger.pop(0)
            logger.warning(
                "DuckDB ran out of memory loading this sync; loading it again with memory_limit"
                " %s (set destination.duckdb.credentials.global_config to choose)",
                limit,
            )
            destination = dlt.destinations.duckdb(
                credentials=duckdb_credentials(duckdb_file, limit)
            )
            run = load_again = functools.partial(pipeline.load, destination=destination)
