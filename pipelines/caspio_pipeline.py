"""Build and run Caspio pipelines; the module a user copies into a scheduler.

The CLI (`pipelines/cli.py`) only parses arguments and calls the functions here, so a cron job,
an Airflow task or a notebook gets exactly what `caspio-sync run` does:

    from pipelines.caspio_pipeline import run_sync
    report = run_sync(destination="duckdb", tables=["Orders", "Customers"])
    print(report.summary())

Credentials come the dlt way: `.dlt/secrets.toml` or `SOURCES__CASPIO__CREDENTIALS__CLIENT_ID`,
`..._CLIENT_SECRET` and `..._INTEGRATION_URL` (or `..._SUBDOMAIN`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.pipeline import Pipeline

from sources.caspio import (
    CLIENT_SETTINGS,
    CaspioClient,
    CaspioConfigError,
    CaspioCredentials,
    CaspioSourceConfiguration,
    caspio,
    resolve_source_configuration,
)

DEFAULT_PIPELINE_NAME = "caspio"
DEFAULT_DATASET_NAME = "caspio"
DEFAULT_DUCKDB_FILE = "caspio_sync.duckdb"
"""Not `caspio.duckdb`: DuckDB names a file's catalog after its stem, and a catalog named like
the `caspio` dataset (schema) makes every later query fail as an ambiguous reference."""

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SyncReport:
    """What one sync did and what it cost: printed by the CLI, returned to schedulers."""

    pipeline_name: str
    destination: str
    location: str
    """The DuckDB file's absolute path, or the warehouse's ``host:port/database``."""
    dataset_name: str
    rows_by_table: dict[str, int]
    api_calls: int
    token_calls: int
    retries: int
    seconds: float
    load_info: LoadInfo | None = None
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Per table: design changes seen and why it was read in full."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_table.values())

    def summary(self) -> str:
        width = max([len(t) for t in self.rows_by_table] + [5])
        lines = [f"{'table'.ljust(width)}  rows"]
        for table, rows in sorted(self.rows_by_table.items()):
            lines.append(f"{table.ljust(width)}  {rows:,}")
        for table, texts in sorted(self.notes.items()):
            lines.extend(f"{table}: {text}" for text in texts)
        lines.append(
            f"{self.total_rows:,} rows into {self.destination} dataset '{self.dataset_name}' "
            f"at {self.location} in {self.seconds:.1f}s; Caspio API calls: {self.api_calls:,} "
            f"(token: {self.token_calls}, retries: {self.retries})"
        )
        return "\n".join(lines)


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


def source_arguments(settings: CaspioSourceConfiguration) -> dict[str, Any]:
    """``caspio()``'s arguments from resolved settings (the client's own are in the client)."""
    return {
        key: getattr(settings, key)
        for key in (
            "tables",
            "include_views",
            "table_options",
            "page_size",
            "schema_contract",
            "metadata",
            "files",
            "attachments",
            "download_to",
        )
    }


def resolve_credentials(credentials: CaspioCredentials | None = None) -> CaspioCredentials:
    """Resolve credentials from dlt config/secrets/env, or fail with the keys to set."""
    if credentials is not None and credentials.is_resolved():
        return credentials
    return resolve_configuration(
        credentials or CaspioCredentials(), sections=("sources", "caspio"), explicit_value=None
    )


DUCKDB_MEMORY_LIMITS = ("48MB", "128MB", "512MB", "2GB")
"""DuckDB's buffer pool for a load: the first limit, then the next ones only for a load that
ran out of memory under the one before.

Why a small pool first: DuckDB's own default takes 80% of the machine's RAM, and a load fills
whatever pool it has with blocks it merely caches, so a sync's peak grew with the table (636 MB
at 1,000,000 rows against 394 MB at 100,000). The benchmark's connector, 3 runs each, median
peak RSS at 100k / 1M rows: 267 / 271 MiB with 48 MB (9.4 s at 1M), 275 / 289 MiB with 64 MB
(8.9 s), 346 MiB at 1M with 128 MB. Why grow: a merge needs working memory. 48 MB merges 100k
changed rows into a 1M-row table, but not 400k, which fails with DuckDB's out-of-memory error
and then loads with 128 MB. The failed job is left pending, so loading again with the next
limit finishes the same package: nothing lost or loaded twice. A user who sets
``[destination.duckdb.credentials.global_config]`` in ``.dlt/config.toml`` (or its env var)
chooses the settings, and no limit is grown.

``preserve_insertion_order = false`` lets DuckDB insert a Parquet file on all cores: the load of
1M rows took 1.45 to 1.49 s against 2.96 to 2.99 s, the sync 6.8 to 7.1 s against 8.3 to 8.5 s
(3 runs each, one session, one emulator). Its peak at 1M was 264 MiB against 257 MiB at 100k
(medians, 1.03x). Rows then sit in the table in no particular order, as SQL promises anyway.
Before the connector wrote its own Parquet (``sources/caspio/parquet_import.py``) the same
setting raised the 1M peak to 1.06x of the 100k one, and it was left off."""


def _duckdb_credentials(duckdb_file: str, memory_limit: str | None = None) -> Any:
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


def destination_location(pipeline: Pipeline) -> str:
    """Where a pipeline loads, for reports: the DuckDB file's path, or the destination's
    ``host:port/database`` (never a credential)."""
    config = pipeline.destination_client().config
    try:
        location = config.data_location()
    except Exception:  # destinations that cannot name a location
        location = None
    return str(location or pipeline.destination.destination_name)


def notes_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """The per-table notes (design changes, full reads) a run added to the client's stats."""
    old = before.get("notes", {})
    return {
        table: texts[len(old.get(table, [])) :]
        for table, texts in after.get("notes", {}).items()
        if len(texts) > len(old.get(table, []))
    }


def _ran_out_of_memory(failed: BaseException) -> bool:
    """True if DuckDB's out-of-memory error is anywhere in the failure (dlt wraps a job's error
    in its retry exceptions, keeping the original text)."""
    seen: set[int] = set()
    pending: list[BaseException] = [failed]
    while pending:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if "Out of Memory Error" in str(exc) or type(exc).__name__ == "OutOfMemoryException":
            return True
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        inner = getattr(exc, "exception", None)
        if isinstance(inner, BaseException):
            pending.append(inner)
    return False


def _run_growing_duckdb_pool(
    pipeline: Pipeline, run: Callable[[], LoadInfo], duckdb_file: str | None
) -> LoadInfo:
    """``run()``; if its load ran out of DuckDB memory under our own limit, the pending package
    is loaded again with the next limit of ``DUCKDB_MEMORY_LIMITS``."""
    larger = list(DUCKDB_MEMORY_LIMITS[1:])
    while True:
        try:
            return run()
        except PipelineStepFailed as failed:
            if (
                duckdb_file is None
                or not larger
                or failed.step != "load"
                or _configured_duckdb_settings()
                or not _ran_out_of_memory(failed)
            ):
                raise
            limit = larger.pop(0)
            logger.warning(
                "DuckDB ran out of memory loading this sync; loading it again with memory_limit"
                " %s (set destination.duckdb.credentials.global_config to choose)",
                limit,
            )
            destination = dlt.destinations.duckdb(
                credentials=_duckdb_credentials(duckdb_file, limit)
            )
            run = functools.partial(pipeline.load, destination=destination)


def build_pipeline(
    destination: str | Any = "duckdb",
    dataset_name: str = DEFAULT_DATASET_NAME,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
    progress: str | None = None,
) -> Pipeline:
    """A dlt pipeline; a DuckDB destination defaults to a file named after the pipeline."""
    if destination == "duckdb":
        duckdb_file = duckdb_path(duckdb_file, pipeline_name)
        if Path(duckdb_file).stem.lower() == dataset_name.lower():
            raise CaspioConfigError(
                f"DuckDB file {duckdb_file!r} is named like the dataset {dataset_name!r}: DuckDB "
                "would then find two objects of that name and fail on the next run; choose "
                "another --duckdb-file or --dataset"
            )
        destination = dlt.destinations.duckdb(credentials=_duckdb_credentials(duckdb_file))
    kwargs: dict[str, Any] = {}
    if pipelines_dir:
        kwargs["pipelines_dir"] = pipelines_dir
    if progress:
        kwargs["progress"] = progress
    return dlt.pipeline(
        pipeline_name=pipeline_name, destination=destination, dataset_name=dataset_name, **kwargs
    )


def run_sync(
    destination: str | Any = "duckdb",
    tables: Sequence[str] | None = None,
    dataset_name: str = DEFAULT_DATASET_NAME,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    full_refresh: bool = False,
    credentials: CaspioCredentials | None = None,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
    progress: str | None = None,
    source_options: dict[str, Any] | None = None,
    client: CaspioClient | None = None,
) -> SyncReport:
    """Sync Caspio tables and views into a destination and report rows and API calls spent.

    Settings come from ``[sources.caspio]`` / ``SOURCES__CASPIO__*`` as in ``caspio()``;
    ``tables`` and ``source_options`` override them. ``full_refresh`` drops and reloads the
    selected tables (all of the source's when ``tables`` is not given)."""
    started = time.perf_counter()
    settings = source_settings(
        pipeline_name, tables, client.credentials if client else credentials, source_options
    )
    if client is None:
        client = make_client(settings)
    # before the source is built: building it lists the account's tables and views
    before = client.stats.snapshot()
    source = caspio(credentials=client.credentials, client=client, **source_arguments(settings))
    pipeline = build_pipeline(
        destination, dataset_name, pipeline_name, duckdb_file, pipelines_dir, progress
    )
    managed_file = duckdb_path(duckdb_file, pipeline_name) if destination == "duckdb" else None
    if pipeline.has_pending_data:
        # A killed run left a normalized or extracted package behind; dlt would load only that
        # and skip extracting, silently missing what changed in Caspio since. Finish it first.
        _run_growing_duckdb_pool(pipeline, pipeline.run, managed_file)
    run: Callable[[], LoadInfo] = functools.partial(pipeline.run, source)
    if full_refresh:
        # only the selected tables: dropping the whole source would empty the others too
        run = functools.partial(
            pipeline.run,
            source,
            refresh="drop_resources" if settings.tables else "drop_sources",
        )
    with _fewer_gc_passes(), _malloc_for_arrow():
        load_info = _run_growing_duckdb_pool(pipeline, run, managed_file)
    after = client.stats.snapshot()
    return SyncReport(
        pipeline_name=pipeline.pipeline_name,
        destination=pipeline.destination.destination_name,
        location=destination_location(pipeline),
        dataset_name=pipeline.dataset_name,
        rows_by_table=rows_loaded(pipeline),
        notes=notes_since(before, after),
        api_calls=after["calls"] - before["calls"],
        token_calls=after["token_calls"] - before["token_calls"],
        retries=after["retries"] - before["retries"],
        seconds=time.perf_counter() - started,
        load_info=load_info,
    )


@contextlib.contextmanager
def _fewer_gc_passes(threshold: int = 50_000) -> Iterator[None]:
    """A sync allocates millions of short-lived objects that reference counting frees at once;
    with Python's default (a collection every 700 allocations) the cycle collector still
    walks the young objects thousands of times, about a tenth of a bulk sync's CPU. Collections
    stay on, only rarer, for the duration of the sync."""
    saved = gc.get_threshold()
    gc.set_threshold(max(threshold, saved[0]), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@contextlib.contextmanager
def _malloc_for_arrow() -> Iterator[None]:
    """Arrow allocates from malloc, not its default mimalloc pool, for the duration of the sync.
    Pages are decoded in the fetch threads and written to Parquet in the extract thread, and
    mimalloc keeps memory freed across threads on per-thread lists for a while. Peak RSS of a
    200k-row sync (the benchmark's connector, 2-3 runs each): 302-316 MiB, against 320-331 MiB
    with only the page parser on malloc and 350-353 MiB with neither, at the same speed. Buffers
    allocated before keep their own pool, so switching back afterwards is safe."""
    saved = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(saved)


def make_client(settings: CaspioSourceConfiguration) -> CaspioClient:
    """The client ``caspio()`` would build from the same settings."""
    return CaspioClient(
        settings.credentials, **{key: getattr(settings, key) for key in CLIENT_SETTINGS}
    )


def rows_loaded(pipeline: Pipeline) -> dict[str, int]:
    """Rows per data table in the last run, from dlt's own normalize counts (dlt's tables out)."""
    trace = pipeline.last_trace
    if trace is None or trace.last_normalize_info is None:
        return {}
    counts = trace.last_normalize_info.row_counts
    return {table: rows for table, rows in counts.items() if not table.startswith("_dlt")}
