"""A user's dlt controls of one run: an incremental window (or Airflow interval) and ``add_limit``.

dlt applies both as steps after the resource, on rows already read. Here they are read from the
running pipe and turned into what the source reads, so a window costs the window's pages and a
limit of n costs n record calls:

- an incremental on a date/time or integer field becomes ``field >= start AND field < end`` in
  ``q.where`` (in the field's own zone; bounds converted the way dlt's filter converts them,
  and widened, never narrowed, so dlt's filter still decides and drops nothing we needed);
- ``add_limit(n)`` reads n pages one after another (``count_rows``: enough pages for n rows).

A run that reads part of an object merges what it read and leaves the source's own state as it
was, so the next plain run still reads everything it has not loaded. The one exception: an
open-ended incremental (no ``end_value``) on the object's own cursor, starting at or before
the stored mark (or on the object's first run), reads everything a plain run would from there
on, so it keeps state as a plain run does.
"""

import dataclasses
import datetime as dt
import math
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.time import ensure_datetime, ensure_datetime_in_tz, normalize_timezone
from dlt.extract.incremental import Incremental, IncrementalResourceWrapper
from dlt.extract.items_transform import LimitItem

from .errors import CaspioConfigError
from .filters import and_, datetime_literal, identifier, int_literal
from .incremental import SERVER_CLOCK_MARGIN, parse_mark
from .options import TableOptions
from .planning import ObjectPlan
from .settings import CURSOR_TYPES, INTEGER_TYPES, ZONED_DATETIME_TYPES
from .timezones import UTC, utc_to_local_lower_bound, zone

ZONE_LOOKAROUND = dt.timedelta(hours=26)
"""How far around a bound the local zone's offsets are looked at (covers any DST shift)."""


@dataclasses.dataclass(frozen=True)
class RunControls:
    """What this run reads of the object, and whether it may store state."""

    plan: ObjectPlan
    """The plan with the window's filter (the source's own plan when there is none)."""
    partial: bool = False
    """Reads part of the object: merged (never replacing the table), state left as it was."""
    page_limit: int | None = None
    """At most this many record calls (``add_limit``); ``None``: no limit."""
    why: str | None = None
    """What narrowed the read (for the run's notes)."""
    hold_back: str | None = None
    """A TIMESTAMP cursor of an open-ended user incremental: rows stamped since the read
    began are left to the next run (``hold_back``)."""

    @property
    def saves_state(self) -> bool:
        return not self.partial


def user_incremental() -> Incremental[Any] | None:
    """The incremental a user gave the running resource (``apply_hints(incremental=...)``)."""
    for step in _steps():
        inc = step._incremental if isinstance(step, IncrementalResourceWrapper) else step
        if isinstance(inc, Incremental):
            # dlt drops a row at its start value whose key it saw there last run, but a row
            # updated again within that second carries the same stamp: re-read, it is merged
            inc.set_deduplication_key((), from_hints=False)
            return inc
    return None


def page_limit(page_size: int) -> int | None:
    """The record calls ``add_limit`` allows this run (``None``: no item limit)."""
    for step in _steps():
        if isinstance(step, LimitItem) and step.max_items not in (None, -1):
            if step.count_rows:
                return math.ceil(step.max_items / page_size)
            return int(step.max_items)
    return None


def _steps() -> list[Any]:
    try:
        return list(dlt.current.pipe().steps)  # type: ignore[attr-defined]
    except Exception:  # iterated outside dlt's extract: no steps of the user's
        return []


def configured_window(plan: ObjectPlan, options: TableOptions) -> Incremental[Any] | None:
    """``table_options`` ``initial_value``/``end_value`` as an incremental on the object's
    cursor (for ``caspio-sync`` and config; the rows are filtered by Caspio alone)."""
    if options.initial_value is None:
        return None
    if plan.cursor is None:
        raise CaspioConfigError(
            f"table_options.{plan.name}.initial_value needs a cursor, and {plan.name} is read "
            f"without one ({plan.write_disposition}): set table_options.{plan.name}.cursor_field "
            "to a TIMESTAMP or DATE/TIME field, or remove initial_value/end_value"
        )
    inc: Incremental[Any] = Incremental(
        plan.cursor.name, initial_value=options.initial_value, end_value=options.end_value
    )
    inc.start_value = inc.initial_value
    return inc


def run_controls(plan: ObjectPlan, page_size: int, options: TableOptions) -> RunControls:
    """This run's read of ``plan``'s object under the user's incremental and limit."""
    limit = page_limit(page_size)
    controls = _windowed(plan, user_incremental() or configured_window(plan, options))
    if limit is None:
        return controls
    why = f"add_limit: at most {limit} page(s)"
    return dataclasses.replace(
        controls, partial=True, page_limit=limit, why=_join(controls.why, why)
    )


def _join(*notes: str | None) -> str | None:
    parts = [n for n in notes if n]
    return "; ".join(parts) if parts else None


def _windowed(plan: ObjectPlan, inc: Incremental[Any] | None) -> RunControls:
    if inc is None or not isinstance(inc.cursor_path, str):
        return RunControls(plan)
    start, end = inc.start_value, inc.end_value
    if start is None and end is None:
        return RunControls(plan)  # dlt filters nothing: the source's own read applies
    field = _field(plan, inc.cursor_path)
    window = None if field is None else window_filter(field, inc)
    what = f"incremental on {inc.cursor_path}: {start} to {end if end is not None else 'now'}"
    if window is None:
        what += " (not pushed down: every row is read and dlt filters them)"
    stamped = field is not None and str(field.get("Type")) in ZONED_DATETIME_TYPES
    hold = str(field["Name"]) if end is None and stamped and field is not None else None
    if end is None and _continues_plain_read(plan, field, start):
        plain = dataclasses.replace(plan, where=and_(window, plan.where))
        return RunControls(plain, why=what, hold_back=hold)
    user_where = plan.read_with.get("where")
    narrowed = dataclasses.replace(
        plan, where=and_(window, user_where), start_after=None, previous_mark=None
    )
    return RunControls(narrowed, partial=True, why=what, hold_back=hold)


def hold_back(table: pa.Table, column: str, began: dt.datetime | None) -> pa.Table:
    """The rows stamped before the read ``began`` (the server's clock at its first page).

    dlt starts an open-ended incremental's next run at the newest stamp it loaded. Pages are
    read in key order, so a row changed during the read on a page already read is stamped
    before a row changed later on a page still ahead: loading that later row would put the
    earlier one behind the next start, for good. Rows stamped since the read began are left to
    the next run, which reads them (its start is at most the read's beginning)."""
    if began is None or column not in table.column_names:
        return table
    stamps = table.column(column)
    since = began.astimezone(UTC) - SERVER_CLOCK_MARGIN  # as the source's own mark (Date: 1 s)
    bound = pa.scalar(since, type=pa.timestamp("us", tz="UTC")).cast(stamps.type)
    return table.filter(pc.fill_null(pc.less(stamps, bound), True))


def _field(plan: ObjectPlan, cursor_path: str) -> dict[str, Any] | None:
    wanted = cursor_path.lower()
    for raw in plan.schema.raw_fields:
        if str(raw.get("Name", "")).lower() == wanted:
            return dict(raw)
    return None


def _continues_plain_read(plan: ObjectPlan, field: dict[str, Any] | None, start: Any) -> bool:
    """An open-ended read on the object's own cursor that leaves nothing behind its mark."""
    cursor = plan.cursor
    if cursor is None or field is None or plan.full_read_reason is not None:
        return False
    if str(field.get("Name")).lower() != cursor.name.lower():
        return False
    if plan.previous_mark is None:
        return True  # the object's first run: it starts where the user says
    try:
        mark = parse_mark(plan.previous_mark)
        begin = _as_utc(ensure_datetime(start)) if start is not None else None
    except (TypeError, ValueError):
        return False
    return begin is None or begin <= _as_utc(mark)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_filter(field: dict[str, Any], inc: Incremental[Any]) -> str | None:
    """``field >= start AND field < end`` for ``inc``'s range, or ``None`` when its values are
    not ones this source can compare in Caspio (dlt then filters every row)."""
    name = identifier(str(field["Name"]))
    ctype = str(field.get("Type", "")).upper()
    if inc.last_value_func is not max:
        return None  # a descending or custom cursor: dlt's own filter only
    try:
        if ctype in CURSOR_TYPES:
            tz = zone(field.get("TimeZone")) if ctype in ZONED_DATETIME_TYPES else None
            low = _date_bound(inc.start_value, tz, lower=True)
            high = _date_bound(inc.end_value, tz, lower=False)
        elif ctype in INTEGER_TYPES or name.upper() == "PK_ID":
            low = _int_bound(inc.start_value)
            high = _int_bound(inc.end_value)
        else:
            return None
    except (TypeError, ValueError, OverflowError) as error:
        raise CaspioConfigError(
            f"incremental on {field['Name']}: {error}; give initial_value/end_value as "
            "datetimes (or integers for an integer field)"
        ) from None
    start_op = ">" if inc.range_start == "open" and ctype not in CURSOR_TYPES else ">="
    end_op = "<=" if inc.range_end == "closed" or ctype in CURSOR_TYPES else "<"
    return and_(
        f"{name} {start_op} {low}" if low is not None else None,
        f"{name} {end_op} {high}" if high is not None else None,
    )


def _int_bound(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return int_literal(value)


def _date_bound(value: Any, tz: Any, lower: bool) -> str | None:
    """A bound in Caspio's terms, widened to whole seconds and, for a zoned stamp, to every
    local time the instant can show (DST): rows just outside are read, and dlt drops them."""
    if value is None:
        return None
    if tz is None:
        # DATE/TIME is naive in Arrow: dlt reads an aware bound in the context zone, naive
        local = ensure_datetime(value)
        if local.tzinfo is not None:
            local = normalize_timezone(local, False)
    else:
        instant = ensure_datetime_in_tz(value).astimezone(UTC)
        if lower:
            local = utc_to_local_lower_bound(instant, tz)
        else:
            offsets = (
                (instant + shift).astimezone(tz).utcoffset() or dt.timedelta(0)
                for shift in (-ZONE_LOOKAROUND, dt.timedelta(0), ZONE_LOOKAROUND)
            )
            local = (instant + max(offsets)).replace(tzinfo=None)
    local = local.replace(tzinfo=None)
    if not lower and local.microsecond:
        local = local.replace(microsecond=0) + dt.timedelta(seconds=1)
    return datetime_literal(local)
