"""A view's per-table keys: the ``_PK_ID_<Table>`` fields (README section 3, [seen]).

In a Caspio view each source table's ``PK_ID`` is also a field named ``_PK_ID_<Table>`` (for
example ``_PK_ID_Orders``), an integer that ``q.select``, ``q.where`` and ``q.orderBy`` accept
although ``/views/{v}/fields`` does not list it (Caspio's own n8n node derives the names from
the tables in the view's ``TableFieldName``s). That lets a client page a view by a numeric key,
as it pages a table by ``PK_ID``, instead of page numbers that drift.

Why they cost nothing: the emulator's SQLite view already carries each source row's PK_ID as
the hidden column ``__k{i}`` (its default order, and what view attachments map through), so a
key field is only a name for that column. They live in ``Scope.hidden``, which the q.* front
resolves names through but which neither ``/fields`` nor a star select (``q.select=*`` or no
``q.select``) reads: a default answer keeps its documented keys (guess 48 in docs/emulator.md).

Why the join indexes: ``_PK_ID_Orders > n ORDER BY _PK_ID_Orders`` over ``Orders ⋈ Customers``
is a rowid range on Orders, but each of its rows must find its Customers row through the join
field; without an index on that field SQLite builds a throw-away automatic index over the
whole other table for every page. ``join_indexes`` gives every plain ``Table.Field = ...``
join column a real index, created with the view and again after a design change rebuilds the
table (``Store.date_indexes`` calls it), so a 1,000-row keyset page of a view stays a range
scan plus 1,000 index lookups however large the tables are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from .sql import qi
from .wire import Field

PREFIX = "_PK_ID_"


def key_name(table: str) -> str:
    """The view field that holds `table`'s PK_ID: ``_PK_ID_<Table>``."""
    return PREFIX + table


def key_fields(tables: list[str]) -> dict[str, Field]:
    """``_pk_id_<table>`` (lower-cased, as names are matched) -> a read-only INTEGER field
    over the view's ``__k{i}`` column, for the view's source tables in ``from`` order."""
    out: dict[str, Field] = {}
    for i, table in enumerate(tables):
        name = key_name(table)
        out[name.lower()] = Field(
            Name=name, Type="INTEGER", Editable=False, column=f"__k{i}", DisplayOrder=0
        )
    return out


def join_indexes(conn: sqlite3.Connection, relation: str, columns: Iterable[str]) -> None:
    """An index on each of `columns` of the table `relation` (the fields views join on);
    ``PK_ID`` is the rowid and needs none. Idempotent."""
    bare = relation.strip('"')
    for column in sorted(set(columns)):
        if column.upper() == "PK_ID":
            continue
        idx = qi(f"ixj_{bare}_{column}")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {idx} ON {relation} ({qi(column)})")


__all__ = ["PREFIX", "join_indexes", "key_fields", "key_name"]
