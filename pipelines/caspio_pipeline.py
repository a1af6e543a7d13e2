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
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline
from typing_extensions import Unpack

from sources.caspio import (
    LEDGER_TABLE,
    CaspioClient,
    CaspioSourceConfiguration,
    call_ledger_of,
    caspio,
    ledger_source,
)

from . import interrupts
from .cleanup import prune_loaded_packages, remove_orphans
from .duckdb_pool import run_growing_duckdb_pool
from .setup import (
    DEFAULT_DATASET_NAME,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    SyncArgs,
    build_pipeline,
    duckdb_path,
    make_client,
    open_sync,
    resolve_credentials,
    source_settings,
)
from .status import record_failure, record_run
from .webhooks import trim_journal

__all__ = [
    "DEFAULT_DATASET_NAME",
    "DEFAULT_DUCKDB_FILE",
    "DEFAULT_PIPELINE_NAME",
    "SyncReport",
    "build_pipeline",
    "duckdb_path",
    "make_client",
    "open_sync",
    "resolve_credentials",
    "run_sync",
    "source_settings",
]


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


def notes_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """The per-table notes (design changes, full reads) a run added to the client's stats."""
    old = before.get("notes", {})
    return {
        table: texts[len(old.get(table, [])) :]
        for table, texts in after.get("notes", {}).items()
        if len(texts) > len(old.get(table, []))
    }


def report_fields(
    pipeline: Pipeline,
    client: CaspioClient,
    before: dict[str, Any],
    started: float,
    rows_by_table: dict[str, int],
) -> dict[str, Any]:
    """What every sync report says: where it loaded, the rows, and what the calls since the
    client's ``before`` snapshot cost (``SyncReport`` fields but ``load_info``)."""
    after = client.stats.snapshot()
    return {
        "pipeline_name": pipeline.pipeline_name,
        "destination": pipeline.destination.destination_name,
        "location": destination_location(pipeline),
        "dataset_name": pipeline.dataset_name,
        "rows_by_table": rows_by_table,
        "notes": notes_since(before, after),
        "api_calls": after["calls"] - before["calls"],
        "token_calls": after["token_calls"] - before["token_calls"],
        "retries": after["retries"] - before["retries"],
        "seconds": time.perf_counter() - started,
    }


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
            "webhook_journal",
        )
    }


def destination_location(pipeline: Pipeline) -> str:
    """Where a pipeline loads, for reports: the DuckDB file's path, or the destination's
    ``host:port/database`` (never a credential)."""
    config = pipeline.destination_client().config
    try:
        location = config.data_location()
    except Exception:  # destinations that cannot name a location
        location = None
    return str(location or pipeline.destination.destination_name)


def run_sync(full_refresh: bool = False, **args: Unpack[SyncArgs]) -> SyncReport:
    """Sync Caspio tables and views into a destination and report rows and API calls spent.

    Settings come from ``[sources.caspio]`` / ``SOURCES__CASPIO__*`` as in ``caspio()``;
    ``tables`` and ``source_options`` override them. ``full_refresh`` drops and reloads the
    selected tables (all of the source's when ``tables`` is not given)."""
    started = time.perf_counter()
    setup = open_sync(**args)
    settings, client, pipeline = setup.settings, setup.client, setup.pipeline
    if settings.monthly_call_budget is not None:
        from . import budget  # it builds on this module

        if not full_refresh:  # table by table, so that a stop keeps the tables done
            return budget.budgeted_run(setup, None, started)
        client.budget = interrupts.budget(budget.monthly_budget(setup, None, by_table=False))
    managed_file = setup.duckdb_file
    # before the source is built: building it lists the account's tables and views
    before = client.stats.snapshot()
    remove_orphans(pipeline)  # what a killed run's extract left behind
    try:
        source = caspio(credentials=client.credentials, client=client, **source_arguments(settings))
        if pipeline.has_pending_data:
            # A killed run left a normalized or extracted package behind; dlt would load only
            # that and skip extracting, silently missing what changed in Caspio since. Finish it.
            run_growing_duckdb_pool(pipeline, pipeline.run, managed_file)
        ledgers = ledger_sources(settings, client)  # the call ledger's copy, in the same load
        run: Callable[[], LoadInfo] = functools.partial(pipeline.run, [source, *ledgers])
        if full_refresh:
            # only the selected tables: dropping the whole source would empty the others too
            run = functools.partial(
                pipeline.run,
                source,
                refresh="drop_resources" if settings.tables else "drop_sources",
            )
        with _fewer_gc_passes(), _malloc_for_arrow():
            load_info = run_growing_duckdb_pool(pipeline, run, managed_file)
        rows = rows_loaded(pipeline)  # before the ledger's own load below replaces the trace
        if full_refresh:  # loaded apart: a refresh must not drop the ledger's copy
            for ledger in ledgers:
                pipeline.run(ledger)
    except BaseException as exc:
        remove_orphans(pipeline)
        record_failure(pipeline, client, before, exc)
        raise
    record_run(pipeline, client, before, "ok")
    trim_journal(pipeline, settings)  # only after the load (and its state) committed
    prune_loaded_packages(pipeline)
    return SyncReport(
        **report_fields(pipeline, client, before, started, rows),
        load_info=load_info,
    )


@contextlib.contextmanager
def _fewer_gc_passes(threshold: int = 50_000) -> Iterator[None]:
    """A sync allocates millions of short-lived objects that reference counting frees at once;
    with Python's default (a collection every 700 allocations) the cycle collector walks the
    young objects thousands of times for nothing. Collections stay on, only rarer, for the
    duration of the sync."""
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
    mimalloc keeps memory freed across threads on per-thread lists for a while, which raises
    the peak (docs/benchmarks-analysis.md). Buffers allocated before keep their own pool, so
    switching back afterwards is safe."""
    saved = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(saved)


def ledger_sources(settings: CaspioSourceConfiguration, client: CaspioClient) -> list[DltSource]:
    """The call ledger's copy into the destination (``call_ledger_in_destination``), if any."""
    ledger = call_ledger_of(client)
    if ledger is None or not settings.call_ledger_in_destination:
        return []
    return [ledger_source(ledger.path)]


def rows_loaded(pipeline: Pipeline) -> dict[str, int]:
    """Rows per data table in the last run, from dlt's own normalize counts (dlt's tables out)."""
    trace = pipeline.last_trace
    if trace is None or trace.last_normalize_info is None:
        return {}
    counts = trace.last_normalize_info.row_counts
    return {
        table: rows
        for table, rows in counts.items()
        if not table.startswith("_dlt") and table != LEDGER_TABLE
    }
