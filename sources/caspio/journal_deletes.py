"""The journaled deletes of one object, applied in the same load as its rows (dlt glue).

What: when ``caspio-sync listen`` has journaled webhook events (``change_journal.py``), each
table's run takes a snapshot of the journal before it reads pages, works out per key the net
effect by ``eventDate`` (a key whose last event is an insert or update is kept), drops every key
this run's pages returned (dlt's merge would otherwise keep one of the two at random), and yields
one extra Arrow item: the keys with ``_caspio_deleted_at`` set and the ``hard_delete`` hint
(``deletes = "delete"``: dlt's merge removes them inside its own transaction), or the current
destination rows of those keys with ``_caspio_deleted_at`` set (``deletes = "mark"``: read
through the pipeline's SQL client, no API call). Replaced tables need no delete rows.

Why the state: the messageIds consumed are kept in the resource state, committed with the load;
the journal is trimmed only of ids a committed state names, and a run skips ids its state
already names, so a crash between commit and trim never applies a delete twice (over a row
re-inserted since).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from .change_journal import ChangeJournal
from .client import CaspioClient
from .deletes import DELETED_AT_COLUMN
from .destination import DESTINATION_LOCK
from .options import TableOptions
from .planning import ObjectPlan
from .schema import TABLES
from .settings import PK_FIELD

logger = logging.getLogger(__name__)

STATE_KEY = "webhook"
"""Resource state: ``{"applied": [messageId, ...]}``, the journal events this load consumed."""
DELETE_EVENT = "table.recordDelete"


def _ci(record: dict[str, Any], name: str) -> Any:
    return next((v for k, v in record.items() if k.lower() == name.lower()), None)


class JournalDeletes:
    """One object's journaled deletes for one run: snapshot, observe pages, yield, record."""

    def __init__(
        self,
        client: CaspioClient,
        plan: ObjectPlan,
        options: TableOptions,
        state: dict[str, Any],
        journal: ChangeJournal | None,
        keep_state: bool = False,
    ) -> None:
        self.client = client
        self.keep_state = keep_state
        self.plan = plan
        self.state = state
        self.mode = options.deletes
        key = plan.primary_key
        self.key_fields: tuple[str, ...] = (key,) if isinstance(key, str) else tuple(key)
        previous = set((state.get(STATE_KEY) or {}).get("applied") or [])
        events = [
            e
            for e in (journal.read() if journal is not None else [])
            if str(e.get("objectName", "")).lower() == plan.name.lower()
        ]
        self.snapshot_ids = [str(e["messageId"]) for e in events]
        fresh = [e for e in events if e["messageId"] not in previous]
        self.candidates = self._net_deletes(fresh) if self._applies() else {}

    def _applies(self) -> bool:
        """Delete rows go only into a merge of some rows: a replaced table needs none."""
        plan = self.plan
        return (
            plan.kind == TABLES
            and self.mode != "off"
            and plan.write_disposition in ("merge", "append")
            and not plan.reads_everything
        )

    def _net_deletes(self, events: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Keys whose last event (by eventDate, then arrival) is a delete -> their key record."""
        last: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
        ordered = sorted(enumerate(events), key=lambda p: (str(p[1].get("eventDate")), p[0]))
        skipped = 0
        for _, event in ordered:
            for record in event.get("keys") or []:
                key = tuple(_ci(record, f) for f in self.key_fields)
                if any(v is None for v in key) or _ci(record, PK_FIELD) is None:
                    skipped += 1
                    continue
                last[key] = (str(event.get("eventType")), record)
        if skipped:
            self.client.stats.note(
                self.plan.name,
                f"{skipped} journaled change(s) without the key {', '.join(self.key_fields)} "
                "ignored (the listener ran with other table_options); reconcile catches them",
            )
        return {k: rec for k, (etype, rec) in last.items() if etype == DELETE_EVENT}

    def observe(self, table: pa.Table) -> None:
        """Keys this run's pages returned are kept, whatever the journal says."""
        if not self.candidates:
            return
        names = {n.lower(): n for n in table.schema.names}
        cols = [names[f.lower()] for f in self.key_fields if f.lower() in names]
        if len(cols) != len(self.key_fields):
            return
        column = table.column(cols[0])
        first = pa.array([k[0] for k in self.candidates], type=column.type)
        rows = table.filter(pc.is_in(column, value_set=first)).select(cols).to_pylist()
        for row in rows:
            self.candidates.pop(tuple(row[c] for c in cols), None)

    def items(self, hints: Any) -> Iterator[Any]:
        """The delete (or mark) item, then the consumed messageIds into the resource state.
        ``hints`` are the run's own (disposition, key, columns): when no page was read, this
        item is the only one to carry them, and without them dlt would append the keys."""
        if self.candidates:
            table = self._hard_rows() if self.mode == "delete" else self._mark_rows()
            if table is not None and table.num_rows:
                self.client.stats.note(
                    self.plan.name,
                    f"{table.num_rows} row(s) {'deleted' if self.mode == 'delete' else 'marked'}"
                    " from the webhook journal",
                )
                column = {
                    "name": DELETED_AT_COLUMN,
                    "data_type": "timestamp",
                    "timezone": True,
                    "nullable": True,
                    "hard_delete": self.mode == "delete",
                }
                columns = {**(hints.get("columns") or {}), DELETED_AT_COLUMN: column}
                # dlt merges a hint's "original_columns" (make_hints keeps both): set the two
                merged: Any = {**hints, "columns": columns, "original_columns": columns}
                yield dlt.mark.with_hints(table, merged)
        if self.keep_state:
            return
        if self.snapshot_ids:
            self.state[STATE_KEY] = {"applied": self.snapshot_ids}
        else:
            self.state.pop(STATE_KEY, None)

    def _stamp(self, n: int) -> pa.Array:
        now = dt.datetime.now(dt.timezone.utc)
        return pa.array([now] * n, type=pa.timestamp("us", tz="UTC"))

    def _hard_rows(self) -> pa.Table:
        records = list(self.candidates.values())
        types = {f.name.lower(): f.arrow_type for f in self.plan.schema.fields}
        names = list(dict.fromkeys([PK_FIELD, *self.key_fields]))
        columns = {
            name: pa.array(
                [_ci(r, name) for r in records], type=types.get(name.lower(), pa.int64())
            )
            for name in names
        }
        columns[DELETED_AT_COLUMN] = self._stamp(len(records))
        return _table(columns)

    def _mark_rows(self) -> pa.Table | None:
        """The destination's current rows of the candidate keys, not yet marked."""
        pipeline = dlt.current.pipeline()
        naming = dlt.current.source_schema().naming
        table_name = naming.normalize_table_identifier(self.plan.name)
        pk_col = naming.normalize_identifier(PK_FIELD)
        keys = sorted({int(_ci(r, PK_FIELD)) for r in self.candidates.values()})
        with DESTINATION_LOCK, pipeline.sql_client() as sql:
            if not sql.has_dataset():
                return None
            qualified = sql.make_qualified_table_name(table_name)
            in_list = ", ".join(str(k) for k in keys)
            try:
                with sql.execute_query(
                    f"SELECT * FROM {qualified} WHERE {sql.escape_column_name(pk_col)} "
                    f"IN ({in_list})"
                ) as cur:
                    names = [d[0] for d in cur.description]
                    rows = cur.fetchall()
            except Exception as exc:  # no such table yet: nothing loaded to mark
                logger.debug("%s: no rows to mark: %s", self.plan.name, exc)
                return None
        by_norm = {naming.normalize_identifier(f.name): f for f in self.plan.schema.fields}
        wanted = [i for i, n in enumerate(names) if not n.startswith("_dlt")]
        mark_at = next((i for i in wanted if names[i] == DELETED_AT_COLUMN), None)
        if mark_at is not None:
            rows = [r for r in rows if r[mark_at] is None]
        columns: dict[str, pa.Array] = {}
        for i in wanted:
            if i == mark_at:
                continue
            values = [_plain(r[i]) for r in rows]
            spec = by_norm.get(names[i])
            columns[names[i]] = pa.array(values, type=spec.arrow_type if spec else None)
        columns[DELETED_AT_COLUMN] = self._stamp(len(rows))
        return _table(columns)


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    """Columns -> a table whose ``PK_ID`` is non-nullable, as the resource's hints declare."""
    fields = [
        pa.field(name, arr.type, nullable=name.lower() != PK_FIELD.lower())
        for name, arr in columns.items()
    ]
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def _plain(value: Any) -> Any:
    """A destination value as the page decoder gives it (JSON columns as text)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def journal_deletes(
    client: CaspioClient,
    plan: ObjectPlan,
    options: TableOptions,
    state: dict[str, Any],
    path: str | None,
    enabled: bool = True,
) -> JournalDeletes:
    """This run's journaled deletes of ``plan``'s object from the journal at ``path``: none
    when there is no journal, or when the run is not ``enabled`` to consume them (a partial
    read keeps its state as it was, so it could not record what it applied)."""
    journal: ChangeJournal | None = None
    if enabled and path is not None:
        journal = ChangeJournal(path)
    if journal is None or not journal.exists():
        return JournalDeletes(client, plan, options, state, None, keep_state=True)
    return JournalDeletes(client, plan, options, state, journal)


def applied_message_ids(resource_states: Mapping[str, Any]) -> set[str]:
    """The messageIds that committed resource states (``pipeline.state``'s) say were applied:
    the only events a trim may remove from the journal."""
    ids: set[str] = set()
    for state in resource_states.values():
        if isinstance(state, Mapping):
            ids.update(str(m) for m in (state.get(STATE_KEY) or {}).get("applied") or [])
    return ids


__all__ = ["STATE_KEY", "JournalDeletes", "applied_message_ids", "journal_deletes"]
