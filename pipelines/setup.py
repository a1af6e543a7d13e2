"""One way every command opens a sync: settings, client and pipeline, resolved once.

``run``, ``run --max-calls``, ``plan`` and ``reconcile`` all call ``open_sync``: the same
settings (``[sources.caspio]``, flags winning), the same client options, the same pipeline,
destination file and dataset, so a setting cannot mean one thing in one command and another
in the next.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import dlt
from dlt.common.configuration.resolve import resolve_configuration
from dlt.pipeline.pipeline import Pipeline
from typing_extensions import Unpack

from sources.caspio import (
    CaspioClient,
    CaspioConfigError,
    CaspioCredentials,
    CaspioSourceConfiguration,
    attach_call_ledger,
    client_from_settings,
    resolve_source_configuration,
)

from . import interrupts
from .cleanup import prune_loaded_packages
from .duckdb_pool import duckdb_credentials
from .progress import RunMonitor
from .staging import with_own_staging

DEFAULT_PIPELINE_NAME = "caspio"
DEFAULT_DATASET_NAME = "caspio"
DEFAULT_DUCKDB_FILE = "caspio_sync.duckdb"
"""Not `caspio.duckdb`: DuckDB names a file's catalog after its stem, and a catalog named like
the `caspio` dataset (schema) makes every later query fail as an ambiguous reference."""


@dataclasses.dataclass(frozen=True)
class SyncSetup:
    """What a command works with: the resolved settings, the client, the pipeline, and the
    DuckDB file this run manages (``None`` for any other destination)."""

    settings: CaspioSourceConfiguration
    client: CaspioClient
    pipeline: Pipeline
    duckdb_file: str | None


class SyncArgs(TypedDict, total=False):
    """What every command (``run_sync``, ``run_with_budget``, ``run_plan``, ``run_reconcile``)
    is told: where to load, which tables, with which credentials, settings and client."""

    destination: str | Any
    """A dlt destination name or object (default ``duckdb``)."""
    tables: Sequence[str] | None
    dataset_name: str
    pipeline_name: str
    credentials: CaspioCredentials | None
    duckdb_file: str | None
    pipelines_dir: str | None
    progress: str | RunMonitor | None
    """dlt's progress name (``log``...) or the CLI's ``RunMonitor``."""
    source_options: dict[str, Any] | None
    """Source settings that win over ``[sources.caspio]`` (the command line's)."""
    client: CaspioClient | None


def open_sync(**args: Unpack[SyncArgs]) -> SyncSetup:
    """Settings, client and pipeline for one command."""
    destination = args.get("destination", "duckdb")
    pipeline_name = args.get("pipeline_name") or DEFAULT_PIPELINE_NAME
    duckdb_file = args.get("duckdb_file")
    client = args.get("client")
    credentials = client.credentials if client else args.get("credentials")
    settings = source_settings(
        pipeline_name, args.get("tables"), credentials, args.get("source_options")
    )
    pipeline = build_pipeline(
        destination,
        args.get("dataset_name") or DEFAULT_DATASET_NAME,
        pipeline_name,
        duckdb_file,
        args.get("pipelines_dir"),
        args.get("progress"),
    )
    prune_loaded_packages(pipeline)  # what earlier runs left (cleanup.py)
    managed = duckdb_path(duckdb_file, pipeline_name) if destination == "duckdb" else None
    if managed is None:
        import_pandas_whole()
    client = client or make_client(settings)
    # every call of the command into the pipeline's call ledger (a client of its own too)
    attach_call_ledger(client, settings.call_ledger_path, pipeline.working_dir)
    interrupts.arm(client)
    progress = args.get("progress")
    if isinstance(progress, RunMonitor):
        progress.watch(client, settings.page_size)
    return SyncSetup(settings, client, pipeline, managed)


def source_settings(
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    tables: Sequence[str] | None = None,
    credentials: CaspioCredentials | None = None,
    source_options: dict[str, Any] | None = None,
) -> CaspioSourceConfiguration:
    """The source's settings exactly as ``caspio()`` resolves them (``[sources.caspio]``,
    ``SOURCES__CASPIO__*``), with ``tables``, ``credentials`` and ``source_options`` (the
    command line's values) winning. Every command calls this: one setting, one meaning."""
    explicit = dict(source_options or {})
    explicit["tables"] = list(tables) if tables else None
    # resolved on their own first, so a missing key is named (client_secret, not credentials)
    explicit["credentials"] = resolve_credentials(credentials)
    return resolve_source_configuration(pipeline_name, **explicit)


def resolve_credentials(credentials: CaspioCredentials | None = None) -> CaspioCredentials:
    """Resolve credentials from dlt config/secrets/env, or fail with the keys to set."""
    if credentials is not None and credentials.is_resolved():
        return credentials
    return resolve_configuration(
        credentials or CaspioCredentials(), sections=("sources", "caspio"), explicit_value=None
    )


def import_pandas_whole() -> None:
    """Imports pandas, when installed, in this thread before a sync into a warehouse.

    Why: dlt writes Arrow tables for PostgreSQL as CSV, and its CSV header calls
    ``pyarrow.array``, which imports pandas in the thread that normalizes. A sync running
    meanwhile in another thread of the process (tasks that Dagster or Prefect run in threads)
    reads ``sys.modules["pandas"].DataFrame`` for every item it extracts, and a half-imported
    pandas has none: three syncs in threads failed with "partially initialized module
    'pandas'". Imported whole first (a second thread's import waits for it), the race is gone.
    A managed DuckDB sync never imports pandas and is left alone."""
    if importlib.util.find_spec("pandas") is not None:
        importlib.import_module("pandas")


def make_client(settings: CaspioSourceConfiguration) -> CaspioClient:
    """The client ``caspio()`` would build from the same settings."""
    return client_from_settings(settings)


def duckdb_path(duckdb_file: str | None, pipeline_name: str) -> str:
    """The DuckDB file as an absolute path: a relative one means this run's current directory
    (dlt would otherwise resolve it against the directory of the pipeline's first run)."""
    if duckdb_file is None:
        duckdb_file = (
            DEFAULT_DUCKDB_FILE
            if pipeline_name == DEFAULT_PIPELINE_NAME
            else f"{pipeline_name}.duckdb"
        )
    return os.path.abspath(os.path.expanduser(duckdb_file))


def build_pipeline(
    destination: str | Any = "duckdb",
    dataset_name: str = DEFAULT_DATASET_NAME,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
    progress: str | RunMonitor | None = None,
) -> Pipeline:
    """A dlt pipeline; a DuckDB destination defaults to a file named after the pipeline, and a
    named pipeline stages its merges apart (``staging.py``)."""
    if destination == "duckdb":
        duckdb_file = duckdb_path(duckdb_file, pipeline_name)
        if Path(duckdb_file).stem.lower() == dataset_name.lower():
            raise CaspioConfigError(
                f"DuckDB file {duckdb_file!r} is named like the dataset {dataset_name!r}: DuckDB "
                "would then find two objects of that name and fail on the next run; choose "
                "another --duckdb-file or --dataset"
            )
        destination = dlt.destinations.duckdb(credentials=duckdb_credentials(duckdb_file))
    destination = with_own_staging(destination, pipeline_name, DEFAULT_PIPELINE_NAME)
    kwargs: dict[str, Any] = {}
    if pipelines_dir:
        kwargs["pipelines_dir"] = pipelines_dir
    if progress:
        kwargs["progress"] = progress
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name, destination=destination, dataset_name=dataset_name, **kwargs
    )
    interrupts.pipeline_settings(pipeline)
    return pipeline
