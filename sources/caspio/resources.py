"""One dlt resource per Caspio table or view: plan, read pages, yield Arrow, keep state.

Per run and object the resource: checks that its state belongs to this account and
destination, fetches ``/fields`` and plans the read (``planning.py``: design changes, cursor,
disposition), reads pages with the cursor/PK filter, converts each page to Arrow and yields it
with the table hints (or, into DuckDB, writes the pages to one Parquet file and yields that:
``parquet_import.py``), then stores the new high-water mark. dlt commits resource state with the
load package, so the mark never runs ahead of loaded data. A user's incremental window or
``add_limit`` narrows the read and leaves the state as it was (``windows.py``); a user's dlt
hints win over the source's (``user_hints.py``). The resource is named like its table
(``state_keys.py``).

State per resource (no secrets): ``kind``, ``fields`` (the /fields answer loaded with),
``cursor`` (``{"field", "value"}``, a UTC ISO timestamp for TIMESTAMP fields), ``last_pk``
(append), ``account`` and ``destination`` (whose state it is: ``lineage.py``), and for a view
``view_keys_refused`` (when Caspio refused its ``_PK_ID_`` keys: ``view_pager.py``).
"""

import dataclasses
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TSchemaContract, TTableSchemaColumns
from dlt.extract.resource import DltResource

from .arrow import expect_json_text_columns
from .catalog import Catalog
from .client import CaspioClient
from .destination import LoadTarget, refuses_merge
from .errors import (
    CaspioConfigError,
    CaspioDesignChangeError,
    CaspioObjectNotFoundError,
    unknown_objects_error,
)
from .incremental import HighWaterMark
from .journal_deletes import journal_deletes
from .lineage import DestinationFacts, bind, forget_loaded, stale_reason
from .options import TableOptions
from .parquet_import import ParquetImport, parquet_import
from .planning import ObjectPlan, plan_object, resolve_kind
from .reader import RecordReader
from .schema import TABLES, VIEWS, changed_column_types
from .settings import PK_FIELD, ObjectKind
from .state_keys import migrate_state, resource_name
from .user_hints import (
    SOURCE_WRITE_DISPOSITION,
    UserHints,
    apply_to_options,
    merge_columns,
    read_user_hints,
    resolve_primary_key,
    snapshot,
)
from .view_pager import remember_keys
from .windows import hold_back, run_controls

logger = logging.getLogger(__name__)

YIELD_BATCH_ROWS = 10_000
"""Pages are handed to dlt ten at a time: dlt recomputes a table's schema for every item it
gets (a visible share of a bulk sync's CPU when fed 1,000-row pages), while 10,000 rows of even
a wide table are a few MB."""


def plan_hints(
    plan: ObjectPlan,
    partial: bool = False,
    columns: TTableSchemaColumns | None = None,
    user_disposition: Any = None,
) -> Any:
    """The dlt hints of one run of an object: columns, key and write disposition. A ``partial``
    run (a window, a limit: ``windows.py``) merges what it read, whatever the table's mode;
    ``columns`` (Caspio's with a user's hints over them) and a user's merge or replace strategy
    (``user_disposition``) are passed on as given (``user_hints.py``)."""
    columns = {k: dict(v) for k, v in (columns or plan.schema.columns).items()}  # type: ignore[misc]
    if plan.primary_key != PK_FIELD:
        columns[PK_FIELD].pop("primary_key", None)
    if plan.cursor is not None and plan.cursor.name in columns:
        columns[plan.cursor.name]["incremental"] = True  # the cursor, as dlt marks its own
    disposition: Any = plan.write_disposition
    if plan.reads_everything and not partial:
        disposition = "replace"
    elif disposition == "append" or (partial and disposition == "replace"):
        # "append" reads only new PK_IDs, but a load package replayed after a crash (dlt
        # re-runs a copy job that had copied its rows before being recorded) would copy the
        # same rows into staging twice. dlt's insert-only merge keeps both copies; its
        # delete-insert merge deduplicates staging on the key, so the replay stays exact.
        disposition = {"disposition": "merge", "strategy": "delete-insert"}
    if isinstance(user_disposition, dict) and user_disposition.get("disposition") == disposition:
        disposition = user_disposition  # the user's strategy for the same disposition
    return dlt.mark.make_hints(
        columns=columns,
        write_disposition=disposition,
        primary_key=list(plan.primary_key)
        if isinstance(plan.primary_key, tuple)
        else plan.primary_key,
    )


@dataclasses.dataclass
class ObjectSync:
    """Reads one Caspio object for one run (runs inside dlt's extract, maybe in a worker)."""

    client: CaspioClient
    name: str
    kind_hint: ObjectKind | None
    """``tables``/``views`` when known (a listing); ``None``: from state or one listing."""
    options: TableOptions
    page_size: int
    catalog: Catalog
    target: LoadTarget
    resource_name: str = ""
    """The resource's name and state key (``state_keys.py``); the Caspio name's table name."""
    source_set: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    """Per hint, the values the source itself gave the resource (``user_hints.py``)."""
    user: UserHints = UserHints()
    """The hints a user set, as last seen (dlt merges the source's over them after a run)."""
    journal: str | None = None
    """The webhook journal whose deletes this object's runs apply (``journal_deletes.py``)."""

    @property
    def key(self) -> str:
        return self.resource_name or resource_name(self.name)

    def _fields(self, kind: ObjectKind) -> list[dict[str, Any]]:
        try:
            return self.client.get_fields(kind, self.name)
        except CaspioObjectNotFoundError:
            raise unknown_objects_error([self.name], self.catalog.names()) from None

    def plan(
        self,
        state: dict[str, Any],
        facts: DestinationFacts | None,
        options: TableOptions | None = None,
    ) -> ObjectPlan:
        """This run's plan: the current ``/fields`` compared with those the object was loaded
        with, and its state with the destination it describes."""
        kind = resolve_kind(self.name, state, self.kind_hint, self.catalog)
        table_name = dlt.current.source_schema().naming.normalize_table_identifier(self.name)
        stale = stale_reason(state, facts, self.name, table_name)
        options = options or self.options
        plan = plan_object(self.name, kind, self._fields(kind), state, options, stale=stale)
        if plan.design.deleted or plan.design.rezoned or plan.design.added:
            self.client.stats.note(self.name, plan.design.describe())
        if plan.write_disposition != "replace" and not plan.reads_everything:
            self._refuse_appending_merges()
        if plan.full_read_reason is not None:
            logger.warning("%s: read in full: %s", self.name, plan.full_read_reason)
            self.client.stats.note(self.name, f"read in full: {plan.full_read_reason}")
        return plan

    def _refuse_appending_merges(self) -> None:
        try:
            pipeline, table_format = dlt.current.pipeline(), dlt.current.resource().table_format
        except Exception:  # iterated outside a pipeline: nothing is loaded anywhere
            return
        why = refuses_merge(pipeline, table_format)
        if why is not None:
            raise CaspioConfigError(f"{self.name}: {why}")

    def run(self) -> Iterator[Any]:
        resources = dlt.current.source_state().setdefault("resources", {})
        migrate_state(resources, self.key, dlt.current.source_schema().naming)
        state = dlt.current.resource_state()
        metrics = dlt.current.resource_metrics()
        before = self.client.stats.object_snapshot(self.name)
        try:
            yield from self._run(state)
        finally:
            after = self.client.stats.object_snapshot(self.name)
            metrics.update({f"caspio_{k}": after[k] - before[k] for k in after})
            # Arrow's allocator keeps freed pages for reuse; once an object is read they would
            # only add to the process's peak while DuckDB or the next table loads
            pa.default_memory_pool().release_unused()

    def _run(self, state: dict[str, Any]) -> Iterator[Any]:
        facts = self.target.prepare(self.client.host)
        user = self.user = self.user.updated(read_user_hints(self.source_set))
        options = apply_to_options(self.name, self.options, user)
        plan = self.plan(state, facts, options)
        normalize = dlt.current.source_schema().naming.normalize_identifier
        if user.primary_key is not None:
            key = resolve_primary_key(self.name, plan.schema, user.primary_key, normalize)
            plan = dataclasses.replace(plan, primary_key=key)
        controls = run_controls(plan, self.page_size, options)
        plan = controls.plan
        if controls.partial:
            self._refuse_appending_merges()
        if controls.why is not None:
            logger.info("%s: %s", self.name, controls.why)
            self.client.stats.note(self.name, controls.why)
        limited = controls.page_limit is not None
        reader = RecordReader(
            self.client,
            plan.schema,
            page_size=self.page_size,
            where=plan.where,
            select=plan.select,
            start_after=plan.start_after,
            max_workers=1 if limited else None,  # pages one after another: no call ahead
            keys_refused=plan.view_keys_refused,
        )
        pages = reader.tables()
        if controls.page_limit is not None:
            pages = itertools.islice(pages, controls.page_limit)
        batch_rows = 1 if limited else YIELD_BATCH_ROWS  # a limit counts pages: one per item
        hwm = HighWaterMark(plan.cursor, plan.previous_mark) if plan.cursor else None
        max_pk: int | None = plan.start_after
        yielded = False
        batch: list[pa.Table] = []
        sink: ParquetImport | None = None
        columns = merge_columns(self.name, plan.schema.columns, user.columns, normalize)
        hints = plan_hints(plan, controls.partial, columns, user.write_disposition)
        self._remember(hints)
        journal = journal_deletes(
            self.client, plan, self.options, state, self.journal, controls.saves_state
        )
        if any(spec.value_type == "json" for spec in plan.schema.fields):
            expect_json_text_columns(self.key)
        try:
            for table in pages:
                journal.observe(table)  # a key read exists, even if held back below
                if controls.hold_back is not None:
                    table = hold_back(table, controls.hold_back, reader.server_time)
                self.client.stats.count_rows(self.name, table.num_rows)
                if hwm is not None:
                    hwm.observe(table)
                if plan.write_disposition == "append":
                    top = pc.max(table.column(PK_FIELD)).as_py()
                    if isinstance(top, int):
                        max_pk = top if max_pk is None else max(max_pk, top)
                if not yielded:
                    yielded = True
                    self._refuse_changed_types(plan)
                    sink = parquet_import(plan.schema.columns, table.schema.names)
                    if sink is None:
                        yield dlt.mark.with_hints(table, hints)
                        continue
                batch.append(table)
                if sum(t.num_rows for t in batch) >= batch_rows:
                    yield from self._hand_over(pa.concat_tables(batch), sink)
                    batch = []
            if batch:
                yield from self._hand_over(pa.concat_tables(batch), sink)
            if sink is not None:
                yield sink.item(hints)
        finally:
            if sink is not None:
                sink.close()  # a failed read leaves no open file behind

        if not yielded and (plan.write_disposition == "replace" or not plan.incremental):
            # an empty table still replaces (truncates) / creates the destination table
            empty = pa.Table.from_batches([], schema=plan.schema.arrow_schema)
            yield dlt.mark.with_hints(empty, hints)
        yield from journal.items(hints)  # journaled deletes: same load; consumed ids in state
        remember_keys(state, reader.keyed)  # a fact of the view, whatever part was read

        if not controls.saves_state:
            # a part was read: the next plain run must still read all it has not loaded
            logger.debug("%s: read in part, state kept as it was", self.name)
            return
        if plan.full_read_reason is not None:
            forget_loaded(state)
        state["kind"] = plan.kind
        state["fields"] = list(plan.schema.raw_fields)
        state["read_with"] = dict(plan.read_with)
        if hwm is not None and plan.cursor is not None:
            mark = hwm.next_mark(reader.server_time)
            if mark is not None:
                state["cursor"] = {"field": plan.cursor.name, "value": mark}
        if plan.write_disposition == "append" and max_pk is not None:
            state["last_pk"] = max_pk
        bind(state, self.client.host, facts)
        logger.debug("%s: read (%s)", self.name, plan.write_disposition)

    def _remember(self, hints: Any) -> None:
        for key, value in snapshot(hints).items():
            self.source_set.setdefault(key, []).append(value)

    def _refuse_changed_types(self, plan: ObjectPlan) -> None:
        changed = changed_column_types(dlt.current.source_schema(), self.name, plan.schema.columns)
        if changed:
            what = ", ".join(f"{name} ({old} -> {new})" for name, old, new in changed)
            raise CaspioDesignChangeError(
                f"{self.name}: fields changed type in Caspio since the last load: {what}; "
                f"nothing was loaded. Reload just this table with the new types: caspio-sync "
                f"run --tables {self.name} --full-refresh (Python: pipeline.run(caspio(tables="
                f"[{self.name!r}]), refresh='drop_resources'))"
            )

    @staticmethod
    def _hand_over(table: pa.Table, sink: ParquetImport | None) -> Iterator[pa.Table]:
        if sink is None:
            yield table
        else:
            sink.write(table)


def object_resource(
    sync: ObjectSync, schema_contract: TSchemaContract | None = None
) -> DltResource:
    """The dlt resource of one Caspio object, named like its table (``state_keys.py``)."""
    name = sync.key

    def read_object() -> Iterator[Any]:
        yield from sync.run()

    resource = dlt.resource(
        read_object,
        name=name,
        table_name=name,
        write_disposition=SOURCE_WRITE_DISPOSITION,
        parallelized=True,
        max_table_nesting=0,
        section="caspio",
    )
    if schema_contract is not None:
        resource.apply_hints(schema_contract=schema_contract)
    for key, value in snapshot(resource._hints).items():
        sync.source_set.setdefault(key, []).append(value)
    return resource


__all__ = ["ObjectSync", "object_resource", "TABLES", "VIEWS"]
