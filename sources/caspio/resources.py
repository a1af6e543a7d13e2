"""One dlt resource per Caspio table or view: plan, read pages, yield Arrow, keep state.

Per run and object the resource: takes the object's kind and ``/fields`` from resource state
(fetching them only on the first run or when Caspio's answer shows the fields changed), picks
the write disposition (``merge`` with a cursor, else ``replace``, or ``append`` by PK_ID when
opted in), reads pages with the cursor/PK filter, converts each page to Arrow and yields it
with the table hints (or, into DuckDB, writes the pages to one Parquet file and yields that:
``parquet_import.py``), then stores the new high-water mark. dlt commits resource state with the
load package, so the mark never runs ahead of loaded data.

State per resource (no secrets): ``kind``, ``fields`` (raw /fields answer), ``cursor``
(``{"field", "value"}``, a UTC ISO timestamp for TIMESTAMP fields), ``last_pk`` (append).
"""

import dataclasses
import logging
from collections.abc import Collection, Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TSchemaContract, TTableSchemaColumns
from dlt.extract.resource import DltResource

from .arrow import expect_json_text_columns, page_to_arrow
from .catalog import Catalog
from .client import CaspioClient
from .errors import (
    CaspioConfigError,
    CaspioError,
    CaspioObjectNotFoundError,
    CaspioQueryRejectedError,
    unknown_objects_error,
)
from .filters import and_, identifier
from .incremental import Cursor, HighWaterMark, cursor_filter, find_cursor
from .options import TableOptions
from .page_decoder import PageDecoder
from .paging import KeysetReader, RecordPage
from .parquet_import import ParquetImport, parquet_import
from .schema import TABLES, VIEWS, ObjectSchema, build_schema, changed_column_types
from .settings import PK_FIELD

logger = logging.getLogger(__name__)

YIELD_BATCH_ROWS = 10_000
"""Pages are handed to dlt ten at a time: dlt recomputes a table's schema for every item it
gets (about 8% of a bulk sync's CPU when fed 1,000-row pages), while 10,000 rows of even a wide
table are a few MB."""


@dataclasses.dataclass
class Plan:
    """What one run does for one object."""

    schema: ObjectSchema
    cursor: Cursor | None
    write_disposition: str
    primary_key: str | tuple[str, ...]
    select: str | None
    where: str | None
    start_after: int | None

    @property
    def reads_everything(self) -> bool:
        """A merge or append run without any filter (first run, new cursor, full refresh)
        reads every row: there is nothing to merge with, so it replaces the table. dlt's
        merge would stage the rows and deduplicate them with a window over the whole table,
        which at a million rows costs DuckDB gigabytes of memory and much of the load time."""
        if self.where is not None:
            return False
        if self.write_disposition == "append":
            return self.start_after is None
        return self.write_disposition == "merge"

    def hints(self) -> Any:
        columns: TTableSchemaColumns = {k: dict(v) for k, v in self.schema.columns.items()}  # type: ignore[misc]
        if self.primary_key != PK_FIELD:
            columns[PK_FIELD].pop("primary_key", None)
        disposition: Any = self.write_disposition
        if self.reads_everything:
            disposition = "replace"
        elif disposition == "append":
            # "append" reads only new PK_IDs, but a load package replayed after a crash (dlt
            # re-runs a copy job that had copied its rows before being recorded) would copy the
            # same rows into staging twice. dlt's insert-only merge keeps both copies; its
            # delete-insert merge deduplicates staging on the key, so the replay stays exact.
            disposition = {"disposition": "merge", "strategy": "delete-insert"}
        return dlt.mark.make_hints(
            columns=columns,
            write_disposition=disposition,
            primary_key=list(self.primary_key)
            if isinstance(self.primary_key, tuple)
            else self.primary_key,
        )


class ObjectSync:
    """Reads one Caspio object for one run (runs inside dlt's extract, maybe in a worker)."""

    def __init__(
        self,
        client: CaspioClient,
        name: str,
        kind: str | None,
        options: TableOptions,
        page_size: int,
        catalog: Catalog,
    ) -> None:
        self.client = client
        self.name = name
        self.kind_hint = kind
        self.options = options
        self.page_size = page_size
        self.catalog = catalog

    # ---- planning --------------------------------------------------------------------------

    def _fields(self, kind: str) -> list[dict[str, Any]]:
        try:
            return self.client.get_fields(kind, self.name)
        except CaspioObjectNotFoundError:
            raise unknown_objects_error([self.name], self.catalog.names()) from None

    def _plan(self, kind: str, raw_fields: list[dict[str, Any]], state: dict[str, Any]) -> Plan:
        opts = self.options
        cursor = None if opts.no_cursor else find_cursor(self.name, raw_fields, opts.cursor_field)
        wd = opts.write_disposition or ("merge" if cursor else "replace")
        select_names: list[str] | None = None
        if opts.fields is not None:
            select_names = list(opts.fields)
            for field in cursor.all if cursor else ():
                if field.name.lower() not in {f.lower() for f in select_names}:
                    select_names.append(field.name)
        schema = build_schema(self.name, kind, raw_fields, select_names)
        where_cursor: str | None = None
        start_after: int | None = None
        if wd == "append":
            if kind == VIEWS:
                raise CaspioConfigError(
                    f"write_disposition 'append' reads by integer PK_ID and {self.name} is a "
                    "view: use merge (with a cursor) or replace in table_options"
                )
            last = state.get("last_pk")
            start_after = last if isinstance(last, int) else None
        elif wd == "merge" and cursor is not None:
            saved = state.get("cursor") or {}
            mark = saved.get("value") if saved.get("field") == cursor.name else None
            where_cursor = cursor_filter(cursor, mark, opts.lag)
        select = None
        if select_names is not None:
            select = ",".join(identifier(n) for n in [PK_FIELD, *select_names])
        return Plan(
            schema=schema,
            cursor=cursor if wd == "merge" else None,
            write_disposition=wd,
            primary_key=opts.primary_key or PK_FIELD,
            select=select,
            where=and_(where_cursor, opts.where),
            start_after=start_after,
        )

    # ---- the run ---------------------------------------------------------------------------

    def run(self) -> Iterator[Any]:
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
        kind = state.get("kind") or self.kind_hint or self.catalog.kind_of(self.name)
        raw_fields = state.get("fields")
        fresh = raw_fields is None
        if raw_fields is None:
            raw_fields = self._fields(kind)
        plan = self._plan(kind, raw_fields, state)
        reader = self._reader(kind, plan)
        pages = reader.pages()
        try:
            first = next(pages)
        except (CaspioQueryRejectedError, CaspioObjectNotFoundError):
            if fresh:
                raise
            # cached fields may be stale (a cursor/selected field removed): re-plan once
            raw_fields, fresh = self._fields(kind), True
            plan = self._plan(kind, raw_fields, state)
            reader = self._reader(kind, plan)
            pages = reader.pages()
            first = next(pages)
        except StopIteration:  # pragma: no cover - pages() always yields the first page
            return

        hwm = (
            HighWaterMark(plan.cursor, (state.get("cursor") or {}).get("value"))
            if (plan.cursor)
            else None
        )
        if hwm is not None and (state.get("cursor") or {}).get("field") != plan.cursor.name:  # type: ignore[union-attr]
            hwm.previous = None
        max_pk: int | None = plan.start_after
        yielded = False
        hints_sent = False
        rows_total = 0
        batch: list[pa.Table] = []
        sink: ParquetImport | None = None

        def chain() -> Iterator[RecordPage]:
            yield first
            yield from pages

        try:
            for page in chain():
                if not len(page):
                    continue
                names = page.field_names()
                if (
                    not hints_sent
                    and not fresh
                    and names is not None
                    and self._fields_changed(names, plan)
                ):
                    raw_fields, plan = self._refresh_fields(
                        kind, plan, state, reader, "fields changed in Caspio"
                    )
                    fresh = True
                    # this page was decoded with the old fields; the pages to come use the new ones
                    page = page.as_rows()
                if any(spec.kind == "json" for spec in plan.schema.fields):
                    expect_json_text_columns(self.name)
                if page.table is None:
                    try:
                        table = page_to_arrow(page.rows or [], plan.schema)
                    except (ValueError, TypeError, pa.ArrowException) as error:
                        if fresh or hints_sent:
                            raise self._unexpected_values(error) from error
                        # a field's type changed in Caspio since the fields were cached: the
                        # first page shows it, so refresh them once and convert it again
                        raw_fields, plan = self._refresh_fields(
                            kind, plan, state, reader, "a field's type changed in Caspio"
                        )
                        fresh = True
                        table = page_to_arrow(page.rows or [], plan.schema)
                elif page.table.schema.equals(plan.schema.arrow_schema):
                    table = page.table
                else:  # pragma: no cover - the decoder is swapped before any later page is read
                    raise RuntimeError(f"{self.name}: a page was decoded with outdated fields")
                rows_total += table.num_rows
                self.client.stats.count_rows(self.name, table.num_rows)
                if hwm is not None:
                    hwm.observe(table)
                if plan.write_disposition == "append":
                    top = pc.max(table.column(PK_FIELD)).as_py()
                    if isinstance(top, int):
                        max_pk = top if max_pk is None else max(max_pk, top)
                if not hints_sent:
                    hints_sent = True
                    if fresh:
                        self._refuse_changed_types(plan)
                    sink = parquet_import(plan.schema.columns, table.schema.names)
                    if sink is None:
                        yield dlt.mark.with_hints(table, plan.hints())
                        yielded = True
                        continue
                batch.append(table)
                if sum(t.num_rows for t in batch) >= YIELD_BATCH_ROWS:
                    yield from self._hand_over(pa.concat_tables(batch), sink)
                    batch = []
                yielded = True
            if batch:
                yield from self._hand_over(pa.concat_tables(batch), sink)
            if sink is not None:
                yield sink.item(plan.hints())
        finally:
            if sink is not None:
                sink.close()  # a failed read leaves no open file behind

        first_load = "fields" not in state
        if not yielded and (plan.write_disposition == "replace" or first_load or fresh):
            # an empty table still replaces (truncates) / creates the destination table
            empty = pa.Table.from_batches([], schema=plan.schema.arrow_schema)
            yield dlt.mark.with_hints(empty, plan.hints())

        state["kind"] = kind
        state["fields"] = raw_fields
        if hwm is not None and plan.cursor is not None:
            server_start = reader.first_response.server_time if reader.first_response else None
            mark = hwm.next_mark(server_start)
            if mark is not None:
                state["cursor"] = {"field": plan.cursor.name, "value": mark}
        if plan.write_disposition == "append" and max_pk is not None:
            state["last_pk"] = max_pk
        logger.debug("%s: %d rows (%s)", self.name, rows_total, plan.write_disposition)

    def _refresh_fields(
        self, kind: str, plan: Plan, state: dict[str, Any], reader: KeysetReader, why: str
    ) -> tuple[list[dict[str, Any]], Plan]:
        """``/fields`` fetched again in the middle of a read: the plan takes the new schema and
        keeps its filters and disposition, and the reader decodes the pages to come with it."""
        logger.info("%s: %s, refreshing /fields", self.name, why)
        raw_fields = self._fields(kind)
        plan = dataclasses.replace(plan, schema=self._plan(kind, raw_fields, state).schema)
        reader.decoder = PageDecoder(plan.schema)
        return raw_fields, plan

    def _refuse_changed_types(self, plan: Plan) -> None:
        changed = changed_column_types(dlt.current.source_schema(), self.name, plan.schema.columns)
        if changed:
            what = ", ".join(f"{name} ({old} -> {new})" for name, old, new in changed)
            raise CaspioConfigError(
                f"{self.name}: fields changed type in Caspio since the last load: {what}. "
                "The loaded columns keep their old types, so nothing was loaded. Reload the "
                "table with the new types: caspio-sync run --full-refresh, or "
                "pipeline.run(..., refresh='drop_resources')"
            )

    def _unexpected_values(self, error: Exception) -> CaspioError:
        return CaspioError(
            f"{self.name}: a page holds values that do not fit the field types ({error}). A "
            "field's type was probably changed in Caspio during this sync or since the last "
            "one. Nothing of this table was loaded; run again, and if it recurs, reload the "
            "table with the new types: caspio-sync run --full-refresh"
        )

    @staticmethod
    def _hand_over(table: pa.Table, sink: ParquetImport | None) -> Iterator[pa.Table]:
        if sink is None:
            yield table
        else:
            sink.write(table)

    def _reader(self, kind: str, plan: Plan) -> KeysetReader:
        return KeysetReader(
            self.client,
            kind,
            self.name,
            page_size=self.page_size,
            where=plan.where,
            select=plan.select,
            start_after=plan.start_after,
            decoder=PageDecoder(plan.schema),
        )

    @staticmethod
    def _fields_changed(names: Collection[str], plan: Plan) -> bool:
        got = {k.lower() for k in names}
        if plan.select is not None:
            return not {f.lower() for f in plan.schema.field_names} <= got
        return got != {f.lower() for f in plan.schema.field_names}


def object_resource(
    client: CaspioClient,
    name: str,
    kind: str | None,
    options: TableOptions,
    page_size: int,
    catalog: Catalog,
    schema_contract: TSchemaContract | None = None,
) -> DltResource:
    """The dlt resource of one Caspio object (name = Caspio name; dlt normalises the table)."""
    sync = ObjectSync(client, name, kind, options, page_size, catalog)

    def read_object() -> Iterator[Any]:
        yield from sync.run()

    resource = dlt.resource(
        read_object,
        name=name,
        table_name=name,
        parallelized=True,
        max_table_nesting=0,
        section="caspio",
    )
    if schema_contract is not None:
        resource.apply_hints(schema_contract=schema_contract)
    return resource


__all__ = ["ObjectSync", "object_resource", "TABLES", "VIEWS"]
