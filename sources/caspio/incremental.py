"""The incremental cursor: which field, the filter it writes, and the high-water mark it keeps.

Caspio has no "modified at" column of its own: incremental reads need a ``TIMESTAMP`` field with
``OnUpdate`` that the table owner added (found automatically) or a date/time field named in
config. Rows are still read in PK order with ``cursor >= from`` as an extra filter, so the same
drift-free, concurrent keyset paging applies.

The new high-water mark is ``min(max cursor seen, server time at sync start)``: a row updated
while the sync runs, behind the reader, carries a stamp after the sync started and is re-read
next run (merge on PK_ID dedups it). The mark lives in dlt resource state, which dlt commits
with the load package, so it never runs ahead of loaded data.
"""

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from .arrow import timestamp_value
from .errors import CaspioConfigError
from .filters import datetime_literal, identifier
from .settings import CURSOR_TYPES, ZONED_DATETIME_TYPES
from .timezones import UTC, utc_to_local_lower_bound, zone

SERVER_CLOCK_MARGIN = dt.timedelta(seconds=2)
"""``Date`` is whole seconds and written just after the first query ran: stay 2 s behind it, so
every row stamped at or before the mark was committed before the sync's first query."""


@dataclasses.dataclass(frozen=True)
class Cursor:
    """The cursor field of one object."""

    name: str
    caspio_type: str
    tz: ZoneInfo | None
    """Zone of a TIMESTAMP field; ``None`` for DATE/TIME (compared as is)."""
    companions: tuple["Cursor", ...] = ()
    """A view's other ``OnUpdate`` stamps, from its other source tables: a view row changes
    when *any* of its source rows does (a customer renamed changes every order row of the
    view), so the filter ORs them and the mark is the largest of all."""

    @property
    def zoned(self) -> bool:
        return self.tz is not None

    @property
    def all(self) -> tuple["Cursor", ...]:
        return (self, *self.companions)


def find_cursor(
    object_name: str, raw_fields: Sequence[Mapping[str, Any]], configured: str | None
) -> Cursor | None:
    """The configured cursor (validated) or the first ``TIMESTAMP`` field with ``OnUpdate``."""
    if configured:
        wanted = configured.lower()
        field = next((f for f in raw_fields if str(f.get("Name", "")).lower() == wanted), None)
        if field is None:
            raise CaspioConfigError(
                f"Cursor field {configured!r} does not exist in {object_name}: fix "
                f"table_options.{object_name}.cursor_field (fields: "
                f"{', '.join(str(f.get('Name')) for f in raw_fields)})"
            )
        ctype = str(field.get("Type", "")).upper()
        if ctype not in CURSOR_TYPES:
            raise CaspioConfigError(
                f"Cursor field {object_name}.{field.get('Name')} is {ctype}, not a date/time "
                "type: name a TIMESTAMP (OnUpdate) or DATE/TIME field in "
                f"table_options.{object_name}.cursor_field"
            )
    else:
        stamps = [
            f
            for f in raw_fields
            if str(f.get("Type", "")).upper() in ZONED_DATETIME_TYPES and f.get("OnUpdate")
        ]
        if not stamps:
            return None
        field, ctype = stamps[0], "TIMESTAMP"
        companions = tuple(
            _cursor(f, "TIMESTAMP") for f in stamps[1:] if _source_table(f) != _source_table(field)
        )
        return dataclasses.replace(_cursor(field, ctype), companions=companions)
    return _cursor(field, ctype)


def _source_table(field: Mapping[str, Any]) -> str | None:
    """The source table of a view field (``"Orders.Updated"`` -> ``"orders"``); None in a table."""
    qualified = str(field.get("TableFieldName") or "")
    return qualified.split(".", 1)[0].lower() if "." in qualified else None


def _cursor(field: Mapping[str, Any], ctype: str) -> Cursor:
    tz = zone(field.get("TimeZone")) if ctype in ZONED_DATETIME_TYPES else None
    return Cursor(identifier(str(field["Name"])), ctype, tz)


def parse_mark(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def cursor_filter(cursor: Cursor, mark: str | None, lag_seconds: float = 0) -> str | None:
    """``Updated > '2024-05-01T04:59:00'`` in the field's own zone; ``None`` on a first run.

    TIMESTAMP marks are strict (``>``): the mark is a stamp every row at or before which was
    already loaded (see ``next_mark``), so an unchanged table returns nothing. DATE/TIME fields
    are written by users, who may reuse a value, so they compare with ``>=``.
    """
    if mark is None:
        return None
    value = parse_mark(mark) - dt.timedelta(seconds=lag_seconds)
    terms = [_after(field, value, lag_seconds) for field in cursor.all]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _after(cursor: Cursor, value: dt.datetime, lag_seconds: float) -> str:
    if cursor.tz is not None:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        local = utc_to_local_lower_bound(value, cursor.tz)
    else:
        local = value.replace(tzinfo=None)
    op = ">" if cursor.tz is not None and not lag_seconds else ">="
    return f"{identifier(cursor.name)} {op} {datetime_literal(local)}"


class HighWaterMark:
    """Tracks the largest cursor value loaded in this run (from the converted Arrow pages)."""

    def __init__(self, cursor: Cursor, previous: str | None) -> None:
        self.cursor = cursor
        self.previous = previous
        self.max_seen: dt.datetime | None = None

    def observe(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        for field in self.cursor.all:
            if field.name not in table.column_names:
                continue
            value = timestamp_value(pc.max(table.column(field.name)))
            if value is not None and (self.max_seen is None or value > self.max_seen):
                self.max_seen = value

    def next_mark(self, server_start: dt.datetime | None) -> str | None:
        """The mark to store: never past the server's clock at sync start, never backwards."""
        if self.max_seen is None:
            return self.previous
        candidate = self.max_seen
        if self.cursor.zoned:
            if candidate.tzinfo is None:
                candidate = candidate.replace(tzinfo=UTC)
            start = server_start or dt.datetime.now(UTC) - dt.timedelta(minutes=1)
            candidate = min(candidate, start - SERVER_CLOCK_MARGIN)
        if self.previous is not None:
            prev = parse_mark(self.previous)
            if self.cursor.zoned and prev.tzinfo is None:
                prev = prev.replace(tzinfo=UTC)
            candidate = max(candidate, prev)
        return candidate.isoformat()
