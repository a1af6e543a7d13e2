"""Table design changes: add, change and delete a table's fields (Caspio's CreateTableField,
UpdateTableField and DeleteTableField), on the same Store the records endpoints use.

A change that alters a table's columns rebuilds its SQLite table in one transaction (create the
new shape, copy every row with its PK_ID, drop the old, rename): the hidden star-JSON column is
a STORED generated column naming every field, and SQLite cannot alter one. Rows are copied
verbatim, so no design change touches an OnUpdate stamp; the AUTOINCREMENT high-water mark is
carried over, so PK_IDs of deleted rows never come back. Views are dropped and re-created
around the rebuild (a field a view reads can be neither renamed, retyped nor deleted, so their
SQL stays valid). Every check runs before anything changes: a refused change changes nothing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import orjson

from .field_rules import (
    FIELD_PROPS,
    FORMULA,
    NO_UNIQUE,
    RETYPES,
    TYPE_SPECIFIC,
    UPDATE_PROPS,
    bad,
    build_field,
    check_name,
    field_of,
    props,
    scope_of,
    table_of,
)
from .sql import Scope, qi
from .store import Store, Table, table_ddl
from .wire import Field, WireError, to_stored, wire_converter


def _check_unused(store: Store, t: Table, f: Field, action: str) -> None:
    """A field a view or a formula reads cannot be renamed, retyped or deleted."""
    key = (t.name.lower(), f.Name.lower())
    for v in store.views.values():
        if key in v.uses:
            raise bad(f"Field '{f.Name}' is used by view '{v.name}' and cannot be {action}")
    for other in t.fields:
        if other.formula is not None and f.Name.lower() in other.formula.refs:
            raise bad(
                f"Field '{f.Name}' is used by formula field '{other.Name}' and cannot be {action}"
            )


def _text(value: Any) -> str:
    """A number or Yes/No as text when a field becomes STRING/TEXT (SQL Server's CAST)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    return str(value)


def _convert(store: Store, t: Table, old: Field, new: Field) -> list[tuple[Any, int]]:
    """Every non-null value of `old` as a value of `new`'s type, or 400 naming the first row
    whose value does not convert (then nothing has changed)."""
    if old.Type not in RETYPES.get(new.Type, set()):
        raise bad(f"Field '{old.Name}' cannot change from {old.Type} to {new.Type}")
    conv = wire_converter(old)
    out: list[tuple[Any, int]] = []
    sql = f'SELECT "PK_ID", {qi(old.column)} FROM {t.relation} WHERE {qi(old.column)} IS NOT NULL'
    for pk, stored in store.conn.execute(sql + ' ORDER BY "PK_ID"'):
        value = conv(stored) if conv else stored
        if new.Type in ("STRING", "TEXT"):
            value = _text(value)
        elif isinstance(value, bool):
            value = int(value)
        try:
            out.append((to_stored(new, value), pk))
        except WireError as exc:
            raise bad(
                f"Field '{old.Name}' cannot change to {new.Type}: row PK_ID {pk}: {exc}",
                "InvalidInputValue",
            ) from exc
    return out


def _relist(store: Store, t: Table, old: Field, new: Field) -> list[tuple[Any, int]]:
    """New ListField items: rows keep their item ids, shown with the new items; ids past
    the new list are dropped."""
    items = new.ListField or []
    sql = f'SELECT "PK_ID", {qi(old.column)} FROM {t.relation} WHERE {qi(old.column)} IS NOT NULL'
    out: list[tuple[Any, int]] = []
    for pk, stored in store.conn.execute(sql):
        ids = [int(k) for k in orjson.loads(stored) if int(k) <= len(items)]
        out.append((to_stored(new, ids) if ids else None, pk))
    return out


def _fill(store: Store, t: Table, f: Field) -> list[tuple[Any, int]]:
    """Values a new generated field takes in the existing rows (guess: AutoNumbers number
    them in PK_ID order, GUID and RANDOM ID draw one each; a TIMESTAMP stays null)."""
    if f.Type not in ("AUTONUMBER", "PREFIXED AUTONUMBER", "GUID", "RANDOM ID"):
        return []
    pks = [r[0] for r in store.conn.execute(f'SELECT "PK_ID" FROM {t.relation} ORDER BY 1')]
    if f.Type == "AUTONUMBER":
        return [(n + 1, pk) for n, pk in enumerate(pks)]
    if f.Type == "PREFIXED AUTONUMBER":
        width = len(f.Format or "1")
        return [(f"{f.Prefix or ''}{str(n + 1).zfill(width)}", pk) for n, pk in enumerate(pks)]
    now = store.now_utc()
    return [(store.generated(t, f, now), pk) for pk in pks]


def _rebuild(
    store: Store,
    t: Table,
    fields: list[Field],
    sources: dict[str, str],
    patches: dict[str, list[tuple[Any, int]]],
) -> Scope:
    """Re-create `t` with `fields` in one transaction: new column <- old column for
    `sources`, then (value, PK_ID) `patches`; rows otherwise copied as they are."""
    conn = store.conn
    for i, f in enumerate(fields):
        f.DisplayOrder = i + 1
    scope = scope_of(t, fields)
    bare = t.relation.strip('"')
    temp = qi(bare + "__design")
    views = [v for v in store.views.values() if t.name in v.tables]
    view_sql = [
        conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?",
            [v.relation.strip('"')],
        ).fetchone()[0]
        for v in views
    ]
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [bare]).fetchone()
    seq = row[0] if row else 0
    new_cols = ", ".join(['"PK_ID"', *(qi(c) for c in sources)])
    old_cols = ", ".join(['"PK_ID"', *(qi(c) for c in sources.values())])
    conn.execute("BEGIN")
    try:
        for v in views:
            conn.execute(f"DROP VIEW {v.relation}")
        conn.execute(table_ddl(temp, fields, scope))
        conn.execute(f"INSERT INTO {temp} ({new_cols}) SELECT {old_cols} FROM {t.relation}")
        for column, values in patches.items():
            conn.executemany(f'UPDATE {temp} SET {qi(column)} = ? WHERE "PK_ID" = ?', values)
        conn.execute(f"DROP TABLE {t.relation}")
        conn.execute(f"ALTER TABLE {temp} RENAME TO {t.relation}")
        cur = conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", [seq, bare]
        )
        if cur.rowcount == 0 and seq:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", [bare, seq])
        for sql in view_sql:
            conn.execute(sql)
        store.date_indexes(t.relation, fields)
        conn.execute(f"ANALYZE {t.relation}")
        conn.execute("COMMIT")
    except sqlite3.IntegrityError as exc:  # only UNIQUE can fail: "... failed: tbl.Field"
        conn.execute("ROLLBACK")
        column = str(exc).rpartition(".")[2]
        raise bad(
            f"Field '{column}' is Unique but would hold duplicate values", "InvalidInputValue"
        ) from exc
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise bad(f"The table cannot take this change: {exc}") from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return scope


def _copies(t: Table) -> list[Field]:
    """Copies of the table's fields to change: a refused change leaves the originals as they are."""
    return [replace(f) for f in t.fields]


def _sources(t: Table, skip: Field | None = None) -> dict[str, str]:
    """Stored (not generated) columns copied as they are by a rebuild."""
    return {f.column: f.column for f in t.fields if f.formula is None and f is not skip}


def _spec_of(f: Field) -> dict[str, Any]:
    """A field's current definition as FieldModel properties (the base of an update)."""
    drop = ("Editable", "DisplayOrder", "IsFormula", "ListField", "TableFieldName")
    spec = {k: v for k, v in f.to_wire().items() if v is not None and k not in drop}
    if f.ListField is not None:
        spec["ListField"] = list(f.ListField)
    if f.IsFormula:
        spec["IsFormula"] = True
    if f.formula is not None:
        spec[FORMULA] = f.formula.text
    return spec


def add_field(store: Store, table: str, body: Any) -> Field:
    """POST /tables/{t}/fields (CreateTableField): existing rows get null in the new field,
    except generated types (see _fill) and formulas (computed for every row)."""
    with store.lock:
        t = table_of(store, table)
        spec = props(body, FIELD_PROPS)
        for key in ("Name", "Type"):
            if not spec.get(key):
                raise bad(f"The field property '{key}' is required")
        check_name(t, spec["Name"], keep=None)
        fields = _copies(t)
        f = build_field(t, spec, fields)
        position = spec.get("DisplayOrder") or 0  # 0: last (FieldModel)
        if position < 0:
            raise bad("DisplayOrder must be 0 (last) or a 1-based position")
        fields.insert(min(position, len(fields) + 1) - 1 if position else len(fields), f)
        fill = _fill(store, t, f)
        t.scope = _rebuild(store, t, fields, _sources(t), {f.column: fill} if fill else {})
        t.fields = fields
        if f.Type in ("AUTONUMBER", "PREFIXED AUTONUMBER"):
            t.seq[f.Name.lower()] = len(fill)
    return f


def update_field(store: Store, table: str, name: str, body: Any) -> Field:
    """PUT /tables/{t}/fields/{f} (UpdateTableField): rename, retype (the data converts or
    nothing changes), reorder, or change other properties."""
    with store.lock:
        t = table_of(store, table)
        old = field_of(t, name, "changed")
        changes = props(body, UPDATE_PROPS)
        new_name = changes.get("Name", old.Name)
        new_type = str(changes.get("Type", old.Type)).strip().upper()
        renamed, retyped = new_name != old.Name, new_type != old.Type
        if renamed:
            check_name(t, new_name, keep=old)
        if renamed or retyped:
            _check_unused(store, t, old, "renamed" if renamed else "retyped")
        if FORMULA in changes and not old.IsFormula:
            raise bad("Formula applies to formula fields only: a field cannot become one")
        spec = _spec_of(old)
        if retyped:  # the old type's own properties go; Unique stays where the type allows it
            gone = TYPE_SPECIFIC | (
                {"Unique", "UniqueAllowNulls"} if new_type in NO_UNIQUE else set()
            )
            for key in gone:
                spec.pop(key, None)
        spec.update({k: v for k, v in changes.items() if k != "DisplayOrder"}, Type=new_type)
        order = changes.get("DisplayOrder")
        if order is not None and order < 0:
            raise bad("DisplayOrder must be 0 (first) or a 1-based position")
        fields = _copies(t)
        at = t.fields.index(old)
        del fields[at]
        new = build_field(t, spec, fields, need_formula=False)
        position = at if order is None else min(max(order - 1, 0), len(fields))
        fields.insert(position, new)
        structural = renamed or retyped or position != at or new.Unique != old.Unique
        if not (structural or new.formula != old.formula or new.ListField != old.ListField):
            new.DisplayOrder = old.DisplayOrder  # metadata only: no rebuild
            t.fields[at] = new
            t.scope.fields[old.Name.lower()] = new
        else:
            sources, patches = _sources(t, skip=old), {}
            if new.formula is None and old.formula is None:
                if retyped:
                    patches[new.column] = _convert(store, t, old, new)
                elif new.ListField != old.ListField:
                    patches[new.column] = _relist(store, t, old, new)
                else:
                    sources[new.column] = old.column
            t.scope = _rebuild(store, t, fields, sources, patches)
            t.fields = fields
        _moved(store, t, old, new)
    return new


def _moved(store: Store, t: Table, old: Field, new: Field) -> None:
    """After an update: AutoNumber counters and attachments follow a rename; view fields
    reading the field take its new properties (their own name and order stay)."""
    seq = t.seq.pop(old.Name.lower(), None)
    if seq is not None and new.Type in ("AUTONUMBER", "PREFIXED AUTONUMBER"):
        t.seq[new.Name.lower()] = seq
    tkey, okey = t.name.lower(), old.Name.lower()
    for key in [k for k in store.attachments if k[0] == tkey and k[1] == okey]:
        store.attachments[(tkey, new.Name.lower(), key[2])] = store.attachments.pop(key)
    source = f"{t.name}.{old.Name}".lower()
    keep = {"Name", "DisplayOrder", "TableFieldName", "column", "formula"}
    for v in store.views.values():
        for vf in v.fields:
            if (vf.TableFieldName or "").lower() == source:
                for k in set(Field.__dataclass_fields__) - keep:
                    setattr(vf, k, getattr(new, k))
                vf.extra = dict(new.extra)


def delete_field(store: Store, table: str, name: str) -> None:
    """DELETE /tables/{t}/fields/{f} (DeleteTableField): the field and its data are gone."""
    with store.lock:
        t = table_of(store, table)
        f = field_of(t, name, "deleted")
        _check_unused(store, t, f, "deleted")
        fields = [x for x in _copies(t) if x.Name != f.Name]
        t.scope = _rebuild(store, t, fields, _sources(t, skip=f), {})
        t.fields = fields
        t.seq.pop(f.Name.lower(), None)
        key = (t.name.lower(), f.Name.lower())
        for k in [k for k in store.attachments if k[:2] == key]:
            del store.attachments[k]
