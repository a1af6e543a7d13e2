"""DuckDB's memory for a sync: a small buffer pool, grown only for a load that needs more.

A load that runs out of memory under one limit is loaded again with the next: the failed job is
left pending, so the same package finishes, nothing lost; a job DuckDB failed after its insert
was committed leaves copies, which ``retried_loads.py`` removes. DuckDB runs each insert on all
cores, so a managed file is loaded by ``DUCKDB_LOAD_WORKERS`` jobs at once, not dlt's 20, which
together run a small pool out of memory (docs/benchmarks-analysis.md). A user who sets
``[destination.duckdb.credentials.global_config]`` (or its env var) chooses the settings, and no
limit is grown; ``[load] workers`` is the user's too. ``preserve_insertion_order = false`` lets
DuckDB insert a Parquet file on all cores; rows then sit in no particular order, as SQL promises
anyway.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
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
DUCKDB_MEMORY_LIMITS = ("64MB", "128MB", "512MB", "2GB")
"""DuckDB's buffer pool for a load: the first limit, then the next ones only for a load that
ran out of memory under the one before. Why small first: DuckDB's default takes 80% of the
machine's RAM and a load fills it with cached blocks, so the peak grew with the table; 64 MB
loads a million new rows and merges small changes, and keeps a sync's peak under 300 MB. Why
grow: a large merge needs working memory. The measurements are in
docs/benchmarks-analysis.md."""


def duckdb_credentials(duckdb_file: str, memory_limit: str | None = None) -> Any:
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(duckdb_file)
    configured = _configured_duckdb_settings()
    credentials.global_config = configured or {
        "memory_limit": memory_limit or DUCKDB_MEMORY_LIMITS[0],
        "preserve_insertion_order": False,
    }
    return credentials


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


class _LoadWorkersSetting:
    """``LOAD__WORKERS`` set to ``DUCKDB_LOAD_WORKERS`` while any managed DuckDB load runs.

    Why counted: dlt reads the setting from the process's environment, which threads share.
    Two syncs in threads of one process each need it for as long as they load; the first
    to finish must not take it from the other, and a setting one of them made must not be
    read by the other as the user's own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    @contextlib.contextmanager
    def held(self, duckdb_file: str | None) -> Iterator[None]:
        with self._lock:
            mine = duckdb_file is not None and (
                self._holders > 0 or dlt.config.get("load.workers") is None
            )
            if mine:
                if self._holders == 0:
                    os.environ["LOAD__WORKERS"] = str(DUCKDB_LOAD_WORKERS)
                self._holders += 1
        try:
            yield
        finally:
            if mine:
                with self._lock:
                    self._holders -= 1
                    if self._holders == 0:
                        os.environ.pop("LOAD__WORKERS", None)


_load_workers = _LoadWorkersSetting()


def run_growing_duckdb_pool(
    pipeline: Pipeline, run: Callable[[], LoadInfo], duckdb_file: str | None
) -> LoadInfo:
    """``run()``; if its load ran out of DuckDB memory under our own limit, the pending package
    is loaded again with the next limit of ``DUCKDB_MEMORY_LIMITS``; one whose schema update
    lost a race with a parallel load, again as it is. Tables with a job that ran twice are then
    rid of the copies it left (``retried_loads.py``)."""
    larger = list(DUCKDB_MEMORY_LIMITS[1:])
    schema_retries = SCHEMA_UPDATE_RETRIES
    load_again: Callable[[], LoadInfo] = pipeline.load  # the pending package, as it stands
    while True:
        try:
            with _load_workers.held(duckdb_file):
                load_info = run()
            remove_retried_duplicates(pipeline, load_info)
            return load_info
        except PipelineStepFailed as failed:
            if failed.step == "load" and schema_retries and retry_schema_update()(failed):
                schema_retries -= 1
                logger.warning("Another load changed the dataset's tables at once; loading again")
                run = load_again
                continue
            if (
                duckdb_file is None
                or not larger
                or failed.step != "load"
                or _configured_duckdb_settings()
                or not ran_out_of_memory(failed)
            ):
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
