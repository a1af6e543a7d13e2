"""`caspio-sync plan`: the API calls a sync would spend, per table and in total, before it runs.

Caspio bills every call, so a user about to point the connector at a big account (or to cap a
run with ``--max-calls``) wants the bill first. The plan makes exactly the decisions a run makes,
with the source's own code (``select_objects``, ``plan_object``, the account and destination
checks) over the same settings and dlt state: it refuses what the run would refuse (another
account's state, a retyped field) and shows the design changes the run will act on. What it
cannot know without reading is how many rows match, so it asks Caspio once per object:

    q.select=COUNT(PK_ID) AS n  [q.where=<the run's filter>]

and prices the pages as the run's keyset reader spends them: ``max(1, ceil(n / page_size))``.
That is exact for tables whose PK_IDs are dense; ranges read concurrently over a gappy key space
(many deleted rows) can cost up to one more call per range (``max_workers`` per table). A view
is read in ranges of its ``_PK_ID_<Table>`` keys, each up to a short page, so its price depends
on how its rows fall into those ranges: ``price_view_read`` asks for the keys of the run's first
page instead of the count, and counts each bounded range (up to ``max_workers - 1`` calls more).

What planning itself costs: the discovery calls the run would make, one ``/fields`` and one
count call per object, and a token call if none is cached. The token it leaves in the 0600
cache is reused by the run, which therefore spends no token call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dlt.common.schema import Schema
from dlt.pipeline.pipeline import Pipeline
from typing_extensions import Unpack

from sources.caspio import (
    PK_FIELD,
    SOURCE_NAME,
    VIEWS,
    CaspioClient,
    CaspioSourceConfiguration,
    Catalog,
    DesignChanges,
    ObjectKind,
    check_account,
    object_state,
    plan_object,
    price_view_read,
    probe_destination,
    resolve_kind,
    select_objects,
    stale_reason,
    validate_table_options,
)

from .setup import SyncArgs, open_sync
from .webhooks import plan_line


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
    design: DesignChanges = dataclasses.field(default_factory=DesignChanges)
    full_read_reason: str | None = None

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
    deletes: str | None = None
    """Where deletes come from: the webhook journal (and the key-scan calls it saves)."""

    @property
    def total_calls(self) -> int:
        return self.discovery_calls + self.token_calls + sum(t.calls for t in self.tables)

    def calls_by_table(self) -> dict[str, int]:
        return {t.name: t.calls for t in self.tables}

    def summary(self) -> str:
        width = max([len(t.name) for t in self.tables] + [5])
        lines = [f"{'table'.ljust(width)}  reads          rows     calls"]
        for t in self.tables:
            lines.append(f"{t.name.ljust(width)}  {t.reads:<12} {t.rows:>9,} {t.calls:>9,}")
            if t.design:
                lines.append(f"  {t.name}: pending design change: {t.design.describe()}")
            if t.full_read_reason is not None:
                lines.append(
                    f"  {t.name}: read in full ({t.page_calls:,} page calls): {t.full_read_reason}"
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
        if self.deletes:
            lines.append(self.deletes)
        return "\n".join(lines)


def resource_states(pipeline: Pipeline) -> Mapping[str, Any]:
    """The Caspio source's per-resource dlt state (kind, fields, cursor mark, last PK)."""
    sources = pipeline.state.get("sources") or {}
    return (sources.get(SOURCE_NAME) or {}).get("resources") or {}


def count_rows(client: CaspioClient, kind: ObjectKind, name: str, where: str | None) -> int:
    """Rows matching ``where`` in one call (``COUNT(PK_ID)``: no rows travel)."""
    params: dict[str, str | int] = {"q.select": f"COUNT({PK_FIELD}) AS n"}
    if where:
        params["q.where"] = where
    result = client.get_records(kind, name, params).data.get("Result") or [{}]
    row = result[0]
    value = next((v for k, v in row.items() if k.lower() == "n"), 0)
    return int(value or 0)


def _naming(pipeline: Pipeline) -> Any:
    return (pipeline.default_schema if pipeline.default_schema_name else Schema(SOURCE_NAME)).naming


def plan_sync(
    pipeline: Pipeline, client: CaspioClient, settings: CaspioSourceConfiguration
) -> SyncPlan:
    """Price the run ``caspio(**settings)`` into ``pipeline`` would be, from state and counts."""
    before = client.stats.snapshot()
    pipeline.sync_destination()  # the run restores state from the destination the same way
    states = resource_states(pipeline)
    check_account(states, client.host, pipeline.pipeline_name)
    parsed = validate_table_options(settings.table_options)
    catalog = Catalog(client, include_views=settings.include_views)
    selected = select_objects(catalog, settings.tables)
    naming = _naming(pipeline)
    table_names = {name: naming.normalize_table_identifier(name) for name, _ in selected}
    facts = probe_destination(pipeline, list(table_names.values()))
    plans: list[TablePlan] = []
    for name, kind_hint in selected:
        state = dict(object_state(states, name, naming))
        kind = resolve_kind(name, state, kind_hint, catalog)
        fields = client.get_fields(kind, name)
        plan = plan_object(
            name,
            kind,
            fields,
            state,
            parsed.for_object(name),
            stale=stale_reason(state, facts, name, table_names[name]),
        )
        after_pk = f"{PK_FIELD} > {plan.start_after}" if plan.start_after is not None else None
        where = " AND ".join(f"({w})" for w in (plan.where, after_pk) if w) or None
        if kind == VIEWS:  # paged by its keys in ranges: priced with the reader's decisions
            price = price_view_read(
                client,
                plan.schema,
                where,
                plan.select,
                settings.page_size,
                by_pk=plan.view_keys_refused,  # remembered refused: no refused call
            )
            rows, page_calls = price.rows, price.page_calls
        else:
            rows = count_rows(client, kind, name, where)
            page_calls = max(1, math.ceil(rows / settings.page_size))
        plans.append(
            TablePlan(
                name=name,
                kind=kind,
                write_disposition=plan.write_disposition,
                incremental=plan.incremental,
                rows=rows,
                fields_calls=1,
                page_calls=page_calls,
                design=plan.design,
                full_read_reason=plan.full_read_reason,
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
        deletes=plan_line(pipeline, settings, [t.name for t in plans if t.kind == "tables"]),
    )


def run_plan(**args: Unpack[SyncArgs]) -> SyncPlan:
    """The ``caspio-sync plan`` entry point: same pipeline, dataset and settings as ``run``."""
    setup = open_sync(**args)
    return plan_sync(setup.pipeline, setup.client, setup.settings)
