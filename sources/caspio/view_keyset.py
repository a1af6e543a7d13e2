"""A view's integer keys and the q.* clauses that page it by them (pure: no calls).

Caspio gives each source table's ``PK_ID`` in a view as the integer field ``_PK_ID_<Table>``
(selectable, filterable, sortable, but not listed by ``/fields``; the tables are those named in
the view's ``TableFieldName``s). A view's rows are unique only on the tuple of its source keys,
and a table that contributes no field has no key we can name, so the keyset is the tuple
``(_PK_ID_<T1>, ..., _PK_ID_<Tn>, PK_ID)``: the view's own string ``PK_ID`` last makes it unique
whatever the keys cover, and costs nothing when they already do.

- ``ORDER BY k1, ..., kn, PK_ID``; "after position ``a``" is the composite
  ``k1 > a1 OR (k1 = a1 AND k2 > a2) OR ...``, led by ``k1 >= a1`` so the engine can seek.
- NULL-safe: a key of an outer join can be NULL, and SQL Server (like SQLite) sorts NULL first
  in ascending order, so "equal" to NULL is ``IS NULL`` and "after" NULL is ``IS NOT NULL``.
- Ranges are bounded on ``k1`` only (``k1 > lo``, ``k1 <= hi``), the composite inside each.
  ``split_ranges`` cuts what remains after the first page in at most ``max_workers`` ranges,
  the last one unbounded, so rows beyond the density estimate are still read. Every range is
  read until a short page: a repeating ``k1`` means a full page ending on ``hi`` says nothing,
  and a row count taken when a range starts would miss an old row when a new one (a new order
  of an old customer) lands ahead of the range's cursor.

``view_pager.py`` sends the calls; ``caspio-sync plan`` prices them with these same functions.
"""

import dataclasses
import logging
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from .filters import and_, int_literal, string_literal
from .schema import ObjectSchema, field_spec
from .settings import API_ROOT, MAX_URI_LENGTH, PK_FIELD, VIEWS

logger = logging.getLogger(__name__)

KEY_PREFIX = "_PK_ID_"
MIN_PAGES_PER_RANGE = 4
"""A view range costs up to one call more than its rows need (its short last page), so a view
is split only into ranges of at least this many pages: the extra calls stay a small share."""
URI_ALLOWANCE = 100
"""Room left in Caspio's 2,047-character URI for the host and anything a proxy adds."""
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

Params = dict[str, str | int]
Position = tuple[Any, ...]
"""Values of ``ViewKeys.columns`` in order; a shorter tuple is a prefix (``(lo,)``: k1 > lo)."""


@dataclasses.dataclass(frozen=True)
class ViewRange:
    """Rows after ``lower`` with ``k1 <= upper`` (no upper bound when ``None``)."""

    lower: Position
    upper: int | None


@dataclasses.dataclass(frozen=True)
class ViewKeys:
    """The ``_PK_ID_<Table>`` keys of one view (first: the range key), then ``PK_ID``."""

    keys: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.keys, PK_FIELD)

    @property
    def first(self) -> str:
        return self.keys[0]

    @property
    def order_by(self) -> str:
        return ", ".join(self.columns)

    def select(self, schema: ObjectSchema, select: str | None) -> str:
        """The run's ``q.select`` (every field of the schema when ``None``) plus the keys: a
        default answer does not carry them."""
        base = select or ",".join(spec.name for spec in schema.fields)
        return ",".join([base, *self.keys])

    def decode_schema(self, schema: ObjectSchema) -> ObjectSchema:
        """``schema`` with the keys as INTEGER columns appended (dropped before loading)."""
        specs = [field_spec({"Name": key, "Type": "INTEGER"}) for key in self.keys]
        return dataclasses.replace(schema, fields=(*schema.fields, *(s for s in specs if s)))

    def after(self, position: Position) -> str:
        """Rows strictly after ``position`` in ``ORDER BY columns`` (NULLs first)."""
        terms: list[str] = []
        for i, value in enumerate(position):
            parts = [self._equal(j, position[j]) for j in range(i)]
            parts.append(self._greater(i, value))
            terms.append(" AND ".join(parts))
        if len(terms) == 1:
            return terms[0]
        either = " OR ".join(f"({t})" for t in terms)
        if position[0] is None:
            return either
        return f"{self.first} >= {self._literal(0, position[0])} AND ({either})"

    def upto(self, upper: int) -> str:
        return f"{self.first} <= {int_literal(upper)}"

    def _literal(self, index: int, value: Any) -> str:
        if index == len(self.keys):
            return string_literal(str(value))
        return int_literal(value)

    def _equal(self, index: int, value: Any) -> str:
        column = self.columns[index]
        return f"{column} IS NULL" if value is None else f"{column} = {self._literal(index, value)}"

    def _greater(self, index: int, value: Any) -> str:
        column = self.columns[index]
        if value is None:
            return f"{column} IS NOT NULL"
        return f"{column} > {self._literal(index, value)}"


def view_keys(
    schema: ObjectSchema, select: str | None, where: str | None, page_size: int
) -> ViewKeys | None:
    """The keys to page ``schema``'s view by, or ``None`` (then it is paged by its string
    ``PK_ID``, and the debug log says why)."""
    if schema.kind != VIEWS:
        return None
    tables: list[str] = []
    for raw in schema.raw_fields:
        source = str(raw.get("TableFieldName") or "")
        table = source.split(".", 1)[0] if "." in source else ""
        if table and table.lower() not in {t.lower() for t in tables}:
            tables.append(table)
    if not tables:
        logger.debug("%s: no TableFieldName in /fields: paged by its string PK_ID", schema.name)
        return None
    odd = [t for t in tables if not _TABLE_NAME.match(t)]
    if odd:
        logger.debug("%s: source table name %r cannot name a key: paged by PK_ID", schema.name, odd)
        return None
    keys = ViewKeys(tuple(KEY_PREFIX + t for t in tables))
    if _longest_uri(schema, keys, select, where, page_size) > MAX_URI_LENGTH - URI_ALLOWANCE:
        logger.debug(
            "%s: naming every field and key would pass the URI limit: paged by its string PK_ID",
            schema.name,
        )
        return None
    return keys


def _longest_uri(
    schema: ObjectSchema, keys: ViewKeys, select: str | None, where: str | None, page_size: int
) -> int:
    """The longest keyed call's path and query: widest key values, every clause present."""
    widest = -(10**19)
    position = (*[widest] * len(keys.keys), ",".join([str(widest)] * len(keys.keys)))
    params = key_params(
        keys, page_size, keys.select(schema, select), where, position, widest, count=True
    )
    path = f"{API_ROOT}/{VIEWS}/{quote(schema.name)}/records?"
    return len(path) + len(urlencode(params))


def key_params(
    keys: ViewKeys,
    page_size: int,
    select: str,
    where: str | None,
    lower: Position | None = None,
    upper: int | None = None,
    count: bool = False,
) -> Params:
    """One keyed records call: after ``lower``, ``k1 <= upper``, in key order."""
    params: Params = {"q.pageSize": page_size, "q.pageNumber": 1, "q.orderBy": keys.order_by}
    clause = and_(
        keys.after(lower) if lower else None,
        keys.upto(upper) if upper is not None else None,
        where,
    )
    if clause:
        params["q.where"] = clause
    params["q.select"] = select
    if count:
        params["q.getPaginationInfo"] = "true"
    return params


def split_ranges(
    first_keys: Sequence[int | None],
    last: Position,
    total: int | None,
    page_size: int,
    max_workers: int,
) -> list[ViewRange]:
    """The ranges that read what follows a full first page (``first_keys``: its ``k1``
    values in order; ``last``: its last row's position; ``total``: the rows it counted).

    The first page's ``k1`` span estimates how many ``k1`` values the remaining rows cover;
    that span is cut into equal ``k1`` widths, the last range left open. Without a count, or
    when the first page is all NULL ``k1`` (an outer join), it is one open range."""
    single = [ViewRange(last, None)]
    known = [k for k in first_keys if k is not None]
    if total is None or last[0] is None or not known:
        return single
    remaining = total - len(first_keys)
    count = min(max_workers, math.ceil(remaining / page_size) // MIN_PAGES_PER_RANGE)
    if count <= 1:
        return single
    span = last[0] - known[0] + 1
    expected = math.ceil(remaining * span / len(known))
    width = max(1, math.ceil(expected / count))
    bounds = [last[0] + i * width for i in range(1, count)]
    ranges = [ViewRange(last, bounds[0])]
    ranges += [ViewRange((lo,), hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    ranges.append(ViewRange((bounds[-1],), None))
    return ranges


__all__ = [
    "KEY_PREFIX",
    "Position",
    "key_params",
    "ViewKeys",
    "ViewRange",
    "split_ranges",
    "view_keys",
]
