"""`caspio-sync plan`: the API calls a sync would spend, per table and in total, before it runs.

Caspio bills every call, so a user about to point the connector at a big account (or to cap a
run with ``--max-calls``) wants the bill first. The plan follows exactly the decisions a run
makes (``sources.caspio.resources.ObjectSync``): the same discovery, the same ``/fields`` calls
on a first run, the same cursor / append / user filters built from the same dlt state. What it
cannot know without reading is how many rows match, so it asks Caspio once per object:

    q.select=COUNT(PK_ID) AS n  [q.where=<the run's filter>]

and prices the pages as the run's keyset reader spends them: ``max(1, ceil(n / page_size))``.
That is exact for tables whose PK_IDs are dense; ranges read concurrently over a gappy key space
(many deleted rows) can cost up to one more call per range (``max_workers`` per table).

What planning itself costs: the discovery calls the run would make, ``/fields`` of objects never
synced, one count call per object, and a token call if none is cached. The token it leaves in
the 0600 cache is reused by the run, which therefore spends no token call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dlt.pipeline.pipeline import Pipeline

from sources.caspio import CaspioClient, CaspioCredentials
from sources.caspio.catalog import Catalog
from sources.caspio.filters import and_, int_literal
from sources.caspio.options import (
    is_glob,
    options_for,
    resolve_names,
    validate_table_options,
)
from sources.caspio.resources import ObjectSync
from sources.caspio.settings import DEFAULT_PAGE_SIZE, PK_FIELD

from .caspio_pipeline import (
    DEFAULT_DATASET_NAME,
    DEFAULT_PIPELINE_NAME,
    build_pipeline,
    make_client,
)
from .reconcile import configured_table_options

SOURCE_NAME = "caspio"


@dataclasses.dataclass
class TablePlan:
    """One object's share of the run: ``fields_calls`` on a first run plus its pages."""

    name: str
    kind: str
    write_disposition: str
    incremental: bool
    rows: int
    fields_calls: int
    page_calls: int

    @property
    def calls(self) -> int:
        return self.fields_calls + self.page_calls

    @property
    def reads(self) -> str:
        if self.write_disposition == "append":
            return "new PK_IDs"
        return "changed rows" if self.incremental else "all rows"


@dataclasses.dataclass
class SyncPlan:
    """The whole run: discovery (table/view listings) plus every object, and what planning cost."""

    tables: list[TablePlan]
    discovery_calls: int
    token_calls: int
    planning_calls: int

    @property
    def total_calls(self) -> int:
        return self.discovery_calls + self.token_calls + sum(t.calls for t in self.tables)

    def calls_by_table(self) -> dict[str, int]:
        return {t.name: t.calls for t in self.tables}

    def summary(self) -> str:
        width = max([len(t.name) for t in self.tables] + [5])
        lines = [f"{'table'.ljust(width)}  reads          rows     calls"]
        for t in self.tables:
            lines.append(
                f"{t.name.ljust(width)}  {t.reads:<12} {t.rows:>9,} {t.calls:>9,}"
                + ("  (incl. 1 /fields: first sync)" if t.fields_calls else "")
            )
        lines.append(
            f"{'listing tables/views'.ljust(width)}  {'':<12} {'':>9} {self.discovery_calls:>9,}"
        )
        if self.token_calls:
            lines.append(f"{'token'.ljust(width)}  {'':<12} {'':>9} {self.token_calls:>9,}")
        lines.append(
            f"A sync now would spend {self.total_calls:,} Caspio API calls "
            f"(this plan spent {self.planning_calls:,})."
        )
        return "\n".join(lines)


def resource_states(pipeline: Pipeline) -> Mapping[str, Any]:
    """The Caspio source's per-resource dlt state (kind, fields, cursor mark, last PK)."""
    sources = pipeline.state.get("sources") or {}
    return (sources.get(SOURCE_NAME) or {}).get("resources") or {}


def count_rows(client: CaspioClient, kind: str, name: str, where: str | None) -> int:
    """Rows matching ``where`` in one call (``COUNT(PK_ID)``: no rows travel)."""
    params: dict[str, str | int] = {"q.select": f"COUNT({PK_FIELD}) AS n"}
    if where:
        params["q.where"] = where
    result = client.get_records(kind, name, params).data.get("Result") or [{}]
    row = result[0]
    value = next((v for k, v in row.items() if k.lower() == "n"), 0)
    return int(value or 0)


def _sync_options(
    table_options: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """``table_options`` without the reconcile-only ``deletes`` key (it costs a sync nothing)."""
    if table_options is None:
        table_options = configured_table_options()
    return {
        str(name): {k: v for k, v in dict(opts).items() if k != "deletes"}
        for name, opts in (table_options or {}).items()
    }


def plan_sync(
    pipeline: Pipeline,
    client: CaspioClient,
    tables: Sequence[str] | None = None,
    include_views: bool = True,
    table_options: Mapping[str, Mapping[str, Any]] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> SyncPlan:
    """Price the run ``caspio(tables=..., ...)`` into ``pipeline`` would be, from state and counts.

    Mirrors ``sources.caspio.caspio``: listing only for all objects / globs / kinds unknown to
    state, ``/fields`` only where state has none, the run's own row filter for each count.
    """
    before = client.stats.snapshot()
    pipeline.sync_destination()  # the run restores state from the destination the same way
    states = resource_states(pipeline)
    parsed = validate_table_options(_sync_options(table_options))
    catalog = Catalog(client, include_views=include_views)
    if tables is None:
        selected: list[tuple[str, str | None]] = list(catalog.objects())
    elif any(is_glob(t) for t in tables):
        selected = list(resolve_names(list(tables), catalog.objects()))
    else:
        selected = list(dict.fromkeys((t, None) for t in tables))
    plans: list[TablePlan] = []
    seen: set[str] = set()
    for name, kind_hint in selected:
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        state = dict(states.get(name) or {})
        kind = state.get("kind") or kind_hint or catalog.kind_of(name)
        raw_fields = state.get("fields")
        fields_calls = 0
        if raw_fields is None:
            raw_fields = client.get_fields(kind, name)
            fields_calls = 1
        sync = ObjectSync(client, name, kind, options_for(name, parsed), page_size, catalog)
        plan = sync._plan(kind, raw_fields, state)
        after_pk = (
            f"{PK_FIELD} > {int_literal(plan.start_after)}"
            if plan.start_after is not None
            else None
        )
        rows = count_rows(client, kind, name, and_(plan.where, after_pk))
        plans.append(
            TablePlan(
                name=name,
                kind=kind,
                write_disposition=plan.write_disposition,
                incremental=plan.where is not None or plan.start_after is not None,
                rows=rows,
                fields_calls=fields_calls,
                page_calls=max(1, math.ceil(rows / page_size)),
            )
        )
    after = client.stats.snapshot()
    # the run lists objects exactly when this plan's catalog had to (same rules, same state)
    discovery = after["listing_calls"] - before["listing_calls"]
    return SyncPlan(
        tables=plans,
        discovery_calls=discovery,
        token_calls=0,
        planning_calls=after["calls"] - before["calls"],
    )


def run_plan(
    destination: str | Any = "duckdb",
    tables: Sequence[str] | None = None,
    dataset_name: str = DEFAULT_DATASET_NAME,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    credentials: CaspioCredentials | None = None,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
    source_options: Mapping[str, Any] | None = None,
    client: CaspioClient | None = None,
) -> SyncPlan:
    """The ``caspio-sync plan`` entry point: same pipeline, dataset and options as ``run``."""
    if client is None:
        client = make_client(credentials)
    pipeline = build_pipeline(destination, dataset_name, pipeline_name, duckdb_file, pipelines_dir)
    options = dict(source_options or {})
    return plan_sync(
        pipeline,
        client,
        tables=tables,
        include_views=bool(options.get("include_views", True)),
        table_options=options.get("table_options"),
        page_size=int(options.get("page_size", DEFAULT_PAGE_SIZE)),
    )
