"""Attachment reads for tables and views: ``.../attachments/{field}/fileInfo`` and
``.../attachments/{field}/{PK_ID}`` (OpenAPI GetFileMetadataFrom/DownloadFileFromAttachment
Table/View Field(s)).

Attachments live in ``Store.attachments`` keyed by (table, field, PK_ID). A view shows a
source table's ATTACHMENT field (its ``TableFieldName`` names the table and field), so a view
route maps each view row to that table's PK_ID through the view's hidden ``__k{i}`` key column
and answers with the view's own PK_ID (a string: the comma-joined source PK_IDs, as
``ViewAttachmentMetadataInfo`` types it). The where clause comes in ``q.where`` or, as
Caspio's own n8n node sends it, in plain ``where`` (README section 5).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from . import windows
from .sql import QueryError, Scope, compile_where, qi, sql_error
from .store import Attachment, Store, Table, View
from .wire import Field


def where_param(params: dict[str, str]) -> str | None:
    """The where clause of an attachment call: ``q.where``, else plain ``where``."""
    where = params.get("q.where") or params.get("where")
    return where if where and where.strip() else None


def attachment_field(scope: Scope, name: str) -> Field:
    """The ATTACHMENT field `name` of a table or view (404 unknown, 400 another type)."""
    f = scope.fields.get(name.lower())
    if f is None or f.Name.upper() == "PK_ID":
        raise QueryError(404, "FieldNotFound", f"Field '{name}' not found")
    if f.Type != "ATTACHMENT":
        raise QueryError(
            400, "IncorrectQueryParameter", f"Field '{f.Name}' is not an attachment field"
        )
    return f


def _info(pk: int | str, a: Attachment) -> dict[str, Any]:
    return {
        "PK_ID": pk,
        "FileName": a.name,
        "FileType": a.content_type,
        "Size": len(a.content),
        "DateCreated": a.created,
        "DateUpdated": a.updated,
    }


def table_file_info(store: Store, t: Table, f: Field, where: str | None) -> list[dict[str, Any]]:
    """Metadata of the attachments in rows of `t` matching `where` (all rows without one)."""
    tkey, fkey = t.name.lower(), f.Name.lower()
    with store.lock:
        if where:
            pks = store.where_pks(t, where)
        else:
            pks = sorted(k[2] for k in store.attachments if k[0] == tkey and k[1] == fkey)
        found = [(pk, store.attachments.get((tkey, fkey, pk))) for pk in pks]
    return [_info(pk, a) for pk, a in found if a is not None]


def table_file(store: Store, t: Table, f: Field, pk_text: str) -> Attachment:
    """The attachment of row `pk_text` (404 when the row has none)."""
    try:
        pk = int(pk_text)
    except ValueError as exc:
        raise QueryError(400, "IncorrectQueryParameter", f"Invalid PK_ID '{pk_text}'") from exc
    a = store.attachments.get((t.name.lower(), f.Name.lower(), pk))
    if a is None:
        raise QueryError(404, "ObjectNotFound", "Requested object not found")
    return a


def _source(v: View, f: Field) -> tuple[str, str, str]:
    """(table key, field key, key column of the view) of a view's attachment field."""
    table, _, field = (f.TableFieldName or "").partition(".")
    names = [n.lower() for n in v.tables]
    return table.lower(), field.lower(), qi(f"__k{names.index(table.lower())}")


def _view_rows(
    store: Store, v: View, key: str, where: str | None, pk: str | None = None
) -> list[tuple[str, int]]:
    """(view PK_ID, source PK_ID) of the view's rows matching `where` or with PK_ID `pk`."""
    sql = f'SELECT "PK_ID", {key} FROM {v.relation}'
    params: list[Any] = []
    if where:
        cond, params = compile_where(v.scope, store.resolve_scope, store.now_text, where)
        sql += f" WHERE {cond}"
    elif pk is not None:
        sql += ' WHERE "PK_ID" = ?'
        params = [pk]
    sql += f" ORDER BY {', '.join(v.scope.default_order)}"
    try:
        return [(str(r[0]), int(r[1])) for r in store.conn.execute(sql, params)]
    except sqlite3.Error as exc:
        raise sql_error(windows.sqlite_message(exc)) from exc


def view_file_info(store: Store, v: View, f: Field, where: str | None) -> list[dict[str, Any]]:
    """Metadata of the attachments shown in rows of view `v` matching `where` (all without);
    ``PK_ID`` is the view row's PK_ID."""
    tkey, fkey, key = _source(v, f)
    with store.lock:
        rows = _view_rows(store, v, key, where)
        found = [(vpk, store.attachments.get((tkey, fkey, pk))) for vpk, pk in rows]
    return [_info(vpk, a) for vpk, a in found if a is not None]


def view_file(store: Store, v: View, f: Field, pk_text: str) -> Attachment:
    """The attachment shown in the view row whose PK_ID is `pk_text` (404 when none)."""
    tkey, fkey, key = _source(v, f)
    with store.lock:
        rows = _view_rows(store, v, key, None, pk=pk_text)
    a = store.attachments.get((tkey, fkey, rows[0][1])) if rows else None
    if a is None:
        raise QueryError(404, "ObjectNotFound", "Requested object not found")
    return a
