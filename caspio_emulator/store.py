"""The embedded database: one SQLite connection per emulator, guarded by one lock.

Why SQLite: ``PK_ID`` is the rowid, so a keyset page (``PK_ID > n ORDER BY PK_ID``) is an index
range scan of a few hundred microseconds even on 1,000,000 rows, and every write is a real
transaction. Why one connection and one lock: every HTTP request runs its SQL as one atomic
step, so a writer and a pager never see half a write and keyset paging stays exact while other
clients write (page-number paging still drifts, as on real Caspio).

Why records pages are cheap: every table carries a hidden ``STORED`` generated column holding
each row's star-select wire JSON (``sql.star_json_sql``), so SQLite itself recomputes it in the
same statement as any INSERT or UPDATE, whichever path writes, and a ``q.select``-less page is
a range scan that returns ready UTF-8 bytes. The column is not a field, so no client can name it.

Caspio semantics that live here: case-insensitive text (``CASPIO_CI`` collation: casefold,
trailing spaces ignored, like SQL Server's default ``SQL_Latin1_General_CP1_CI_AS``), a T-SQL
``LIKE`` (``%``, ``_``, ``[a-c]``, ``[^a]``, case-insensitive), generated values
(PK_ID, AUTONUMBER, PREFIXED AUTONUMBER, GUID, RANDOM ID) and TIMESTAMP stamps in the field's
zone from a controllable clock.
"""

from __future__ import annotations

import random
import re
import sqlite3
import string
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Protocol

import orjson
import sqlglot
from sqlglot import exp

from . import view_keys, windows, zones
from .sql import (
    WIRE_COLUMN,
    Compiled,
    QueryError,
    Scope,
    compile_where,
    qi,
    sql_error,
    star_json_sql,
)
from .wire import DATE_TYPES, Field, WireError, to_stored, wire_converter

Clock = Callable[[], datetime]

# STORED generated columns (SQLite 3.31+) hold each table row's wire JSON; without them every
# records page is built by json_object, as it is for views
GENERATED_COLUMNS = sqlite3.sqlite_version_info >= (3, 31, 1)


def real_clock() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- SQLite functions


def _ci_key(s: str) -> str:
    return s.rstrip(" ").casefold()


def _ci_collate(a: str, b: str) -> int:
    ka, kb = _ci_key(a), _ci_key(b)
    return (ka > kb) - (ka < kb)


@lru_cache(maxsize=4096)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if escape and ch == escape and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            j = pattern.find("]", i + 2)
            if j == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : j]
                neg = body.startswith("^")
                if neg:
                    body = body[1:]
                esc = "".join("\\" + c if c in "\\]^[" else c for c in body)
                out.append("[" + ("^" if neg else "") + esc + "]")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _like(pattern: Any, value: Any, escape: Any = None) -> int | None:
    if pattern is None or value is None:
        return None
    return int(
        _like_regex(str(pattern), escape if isinstance(escape, str) else None).fullmatch(str(value))
        is not None
    )


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else v


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def connect() -> sqlite3.Connection:
    """A private temporary database (spills to a temp file, so 1M-row tables don't live in
    RAM only) with the Caspio functions registered."""
    conn = sqlite3.connect("", check_same_thread=False, isolation_level=None)
    conn.create_collation("CASPIO_CI", _ci_collate)
    conn.create_function("like", 2, _like, deterministic=True)
    conn.create_function("like", 3, _like, deterministic=True)
    conn.create_function("caspio_upper", 1, _upper, deterministic=True)
    conn.create_function("caspio_lower", 1, _lower, deterministic=True)
    conn.create_function("caspio_scalar", 2, windows.caspio_scalar, deterministic=True)
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def column_decl(f: Field) -> str:
    t = f.Type
    if t in ("NUMBER", "CURRENCY"):
        decl = "REAL"
    elif t in ("INTEGER", "AUTONUMBER", "YES/NO"):
        decl = "INTEGER"
    elif t in DATE_TYPES or t.startswith("LIST-"):
        decl = "TEXT"
    else:
        decl = "TEXT COLLATE CASPIO_CI"
    if f.formula is not None:  # computed by SQLite from the row, never written
        return f"{qi(f.column)} {decl} GENERATED ALWAYS AS ({f.formula.sql}) VIRTUAL"
    if f.Unique and t not in ("AUTONUMBER",):
        decl += " UNIQUE"
    return f"{qi(f.column)} {decl}"


def table_ddl(relation: str, fields: list[Field], scope: Scope) -> str:
    """``CREATE TABLE`` for a Caspio table (also used to rebuild one on a design change);
    sets ``scope.wire_column`` when the row's star-select JSON is kept in a generated column."""
    cols = [column_decl(f) for f in fields]
    if GENERATED_COLUMNS and all(f.column.lower() != WIRE_COLUMN.lower() for f in fields):
        # each row's star-select JSON, kept by SQLite itself on every INSERT and
        # UPDATE (whatever path writes), so it can never go stale
        scope.wire_column = WIRE_COLUMN
        cols.append(f"{qi(WIRE_COLUMN)} TEXT GENERATED ALWAYS AS ({star_json_sql(scope)}) STORED")
    return (
        f'CREATE TABLE {relation} ("PK_ID" INTEGER PRIMARY KEY AUTOINCREMENT'
        + "".join(", " + c for c in cols)
        + ")"
    )


# ---------------------------------------------------------------- objects


class ChangeSink(Protocol):
    """Told of every client-visible record change (webhooks.py delivers them).

    Why a hook here: a change reaches the store from the REST routes and from the emulator's
    Python API alike, and only the store sees a row before and after it changes, atomically
    under its lock. Bulk paths (dataset loading, ``generate``, design changes, delete-all)
    never call it: Caspio fires no event for them either."""

    def watches(self, table: str) -> bool:
        """Whether any active subscription reads changes of `table` (else no snapshot)."""
        ...

    def record_changes(
        self,
        table: Table,
        kind: str,
        before: list[dict[str, Any]],
        after: list[dict[str, Any]],
        source: str,
    ) -> None:
        """`kind` is insert/update/delete; rows are wire rows by PK_ID; `source` is the
        Caspio event source the change counts as (``RESTAPIs``, ``Datasheet``)."""
        ...


@dataclass
class Table:
    name: str
    note: str
    fields: list[Field]
    relation: str
    scope: Scope
    seq: dict[str, int] = field(default_factory=dict)

    def field(self, name: str) -> Field | None:
        return self.scope.fields.get(name.lower())


@dataclass
class View:
    name: str
    note: str
    fields: list[Field]
    relation: str
    scope: Scope
    tables: list[str]
    # (table, field), lower-cased, of every table field the view reads (fields and join)
    uses: set[tuple[str, str]] = field(default_factory=set)
    # (table relation, column) of every table column the join compares: indexed (view_keys)
    join_columns: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Attachment:
    name: str
    content_type: str
    content: bytes
    created: str
    updated: str


class Store:
    """Tables, views and their rows; every public method takes the lock itself."""

    def __init__(self, clock: Clock | None = None, seed: int = 0) -> None:
        self.conn = connect()
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {}
        self.views: dict[str, View] = {}
        self.directories: dict[str, Table] = {}
        self.clock: Clock = clock or real_clock
        self.rng = random.Random(seed)
        # (table lower, field lower, pk) -> Attachment
        self.attachments: dict[tuple[str, str, int], Attachment] = {}
        # told of record changes (outgoing webhooks); None: nobody listens
        self.sink: ChangeSink | None = None

    # -------------------------------------------------------- schema

    def now_utc(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.astimezone(timezone.utc)

    def now_text(self) -> str:
        """GETDATE(): the clock in UTC as a stored date (guess: Caspio's server zone is UTC)."""
        return self.now_utc().replace(tzinfo=None, microsecond=0).isoformat(timespec="seconds")

    def create_table(
        self, name: str, fields: list[Field], note: str = "", kind: str = "table"
    ) -> Table:
        with self.lock:
            key = name.lower()
            registry = self.directories if kind == "directory" else self.tables
            if key in registry or (kind == "table" and key in self.views):
                raise ValueError(f"{kind} {name!r} already exists")
            relation = qi(("dir_" if kind == "directory" else "tbl_") + name)
            pk = Field(Name="PK_ID", Type="INTEGER", Editable=False, column="PK_ID")
            scope_fields = {"pk_id": pk}
            scope_fields.update({f.Name.lower(): f for f in fields})
            scope = Scope(name, relation, scope_fields, ['"PK_ID"'], hide_pk=kind == "directory")
            self.conn.execute(table_ddl(relation, fields, scope))
            table = Table(name, note, fields, relation, scope)
            registry[key] = table
            return table

    def create_view(
        self, name: str, from_tables: list[str], join: str, field_refs: list[str], note: str = ""
    ) -> View:
        """An inner join of `from_tables` on `join`; PK_ID = comma-joined source PK_IDs."""
        with self.lock:
            if name.lower() in self.views or name.lower() in self.tables:
                raise ValueError(f"view {name!r}: name already used")
            tables: list[Table] = []
            for t in from_tables:
                tab = self.tables.get(t.lower())
                if tab is None:
                    raise ValueError(f"view {name!r}: unknown table {t!r} in from")
                tables.append(tab)
            alias = {t.name.lower(): f"t{i}" for i, t in enumerate(tables)}
            by_alias = {f"t{i}": t for i, t in enumerate(tables)}
            # resolve field refs
            picked: list[tuple[Table, Field]] = []
            for ref in field_refs:
                if not isinstance(ref, str) or ref.count(".") != 1:
                    raise ValueError(f"view {name!r}: field {ref!r} must be 'Table.Field'")
                tname, fname = ref.split(".")
                tab = self.tables.get(tname.lower())
                if tab is None or tab.name.lower() not in alias:
                    raise ValueError(f"view {name!r}: field {ref!r} names a table not in from")
                f = tab.field(fname)
                if f is None:
                    raise ValueError(f"view {name!r}: field {ref!r} not found")
                picked.append((tab, f))
            short = [f.Name.lower() for _, f in picked]
            vfields: list[Field] = []
            selects = [
                " || ',' || ".join(f'CAST({a}."PK_ID" AS TEXT)' for a in by_alias) + ' AS "PK_ID"'
            ]
            selects += [f'{a}."PK_ID" AS "__k{i}"' for i, a in enumerate(by_alias)]
            for i, (tab, f) in enumerate(picked):
                vname = f.Name if short.count(f.Name.lower()) == 1 else f"{tab.name}_{f.Name}"
                vf = Field(**{k: getattr(f, k) for k in Field.__dataclass_fields__})
                vf.Name = vname
                vf.column = vname
                vf.TableFieldName = f"{tab.name}.{f.Name}"
                vf.DisplayOrder = i + 1
                vf.extra = dict(f.extra)
                vfields.append(vf)
                selects.append(f"{alias[tab.name.lower()]}.{qi(f.column)} AS {qi(vname)}")
            uses = {(tab.name.lower(), f.Name.lower()) for tab, f in picked}
            joins: set[tuple[str, str]] = set()
            cond = self._join_sql(name, join, alias, by_alias, uses, joins)
            relation = qi("vw_" + name)
            froms = ", ".join(f"{t.relation} AS {a}" for a, t in by_alias.items())
            self.conn.execute(
                f"CREATE VIEW {relation} AS SELECT {', '.join(selects)} FROM {froms} WHERE {cond}"
            )
            pk = Field(Name="PK_ID", Type="STRING", Editable=False, column="PK_ID")
            scope_fields = {"pk_id": pk}
            scope_fields.update({f.Name.lower(): f for f in vfields})
            order = [f'"__k{i}"' for i in range(len(tables))]
            scope = Scope(name, relation, scope_fields, order, is_view=True)
            # _PK_ID_<Table>: named in q.*, never listed nor in star answers (view_keys.py)
            scope.hidden = view_keys.key_fields([t.name for t in tables])
            view = View(name, note, vfields, relation, scope, [t.name for t in tables], uses)
            view.join_columns = joins
            for tab in tables:
                view_keys.join_indexes(
                    self.conn, tab.relation, [c for r, c in joins if r == tab.relation]
                )
            self.views[name.lower()] = view
            return view

    def _join_sql(
        self,
        view: str,
        join: str,
        alias: dict[str, str],
        by_alias: dict[str, Table],
        uses: set[tuple[str, str]],
        joins: set[tuple[str, str]],
    ) -> str:
        try:
            tree = sqlglot.parse_one(f"SELECT 1 FROM x WHERE {join}", read="tsql")
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"view {view!r}: cannot parse join {join!r}: {exc}") from exc
        where = tree.args.get("where")
        if where is None:
            raise ValueError(f"view {view!r}: empty join")

        def emit(node: exp.Expression) -> str:
            if isinstance(node, exp.Column):
                a = alias.get(node.table.lower())
                if not a:
                    raise ValueError(
                        f"view {view!r}: join column {node.sql()!r} must be Table.Field of a "
                        "from table"
                    )
                f = by_alias[a].field(node.name)
                if f is None:
                    raise ValueError(f"view {view!r}: join field {node.sql()!r} not found")
                uses.add((by_alias[a].name.lower(), f.Name.lower()))
                joins.add((by_alias[a].relation, f.column))
                return f"{a}.{qi(f.column)}"
            if isinstance(node, exp.Literal):
                if node.is_string:
                    return "'" + node.this.replace("'", "''") + "'"
                return str(float(node.this)) if "." in node.this else str(int(node.this))
            ops: dict[type[exp.Expression], str] = {
                exp.EQ: "=",
                exp.NEQ: "<>",
                exp.GT: ">",
                exp.GTE: ">=",
                exp.LT: "<",
                exp.LTE: "<=",
                exp.And: "AND",
                exp.Or: "OR",
            }
            op = ops.get(type(node))
            if op:
                return f"({emit(node.this)} {op} {emit(node.expression)})"
            if isinstance(node, exp.Paren):
                return f"({emit(node.this)})"
            raise ValueError(f"view {view!r}: unsupported join expression {node.sql()!r}")

        return emit(where.this)

    def finish_load(self) -> None:
        """After bulk loading: counters from the data, indexes on date fields (incremental
        cursors filter and sort on them)."""
        with self.lock:
            for t in list(self.tables.values()) + list(self.directories.values()):
                self._init_seq(t)
                self.date_indexes(t.relation, t.fields)
            self.conn.execute("PRAGMA analysis_limit=1000")
            self.conn.execute("ANALYZE")

    def date_indexes(self, relation: str, fields: list[Field]) -> None:
        """Indexes on date fields (incremental cursors filter and sort on them) and on the
        columns views join on (a view's keyset page looks each row's partner up: view_keys)."""
        for f in fields:
            if f.Type in ("DATE/TIME", "TIMESTAMP"):
                idx = qi(f"ix_{relation.strip(chr(34))}_{f.column}")
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {idx} ON {relation} ({qi(f.column)})"
                )
        for v in self.views.values():
            cols = [c for r, c in v.join_columns if r == relation]
            view_keys.join_indexes(self.conn, relation, cols)

    def _init_seq(self, t: Table) -> None:
        for f in t.fields:
            if f.Type == "AUTONUMBER":
                (mx,) = self.conn.execute(
                    f"SELECT MAX({qi(f.column)}) FROM {t.relation}"
                ).fetchone()
                t.seq[f.Name.lower()] = int(mx or 0)
            elif f.Type == "PREFIXED AUTONUMBER":
                plen = len(f.Prefix or "")
                row = self.conn.execute(
                    f"SELECT {qi(f.column)} FROM {t.relation} "
                    f"ORDER BY length({qi(f.column)}) DESC, {qi(f.column)} COLLATE BINARY DESC "
                    "LIMIT 1"
                ).fetchone()
                v = row[0] if row else None
                tail = v[plen:] if isinstance(v, str) else ""
                t.seq[f.Name.lower()] = int(tail) if tail.isdigit() else 0

    # -------------------------------------------------------- lookups

    def table(self, name: str) -> Table | None:
        return self.tables.get(name.lower())

    def view(self, name: str) -> View | None:
        return self.views.get(name.lower())

    def resolve_scope(self, name: str) -> Scope | None:
        """Subqueries may read any table or view of the account."""
        obj = self.tables.get(name.lower()) or self.views.get(name.lower())
        return obj.scope if obj else None

    # -------------------------------------------------------- generated values

    def next_seq(self, t: Table, f: Field) -> int:
        key = f.Name.lower()
        t.seq[key] = t.seq.get(key, 0) + 1
        return t.seq[key]

    def generated(self, t: Table, f: Field, stamp_now: datetime) -> Any:
        """The value Caspio computes for a read-only field on insert (None: leave empty)."""
        if f.Type == "AUTONUMBER":
            return self.next_seq(t, f)
        if f.Type == "PREFIXED AUTONUMBER":
            n = self.next_seq(t, f)
            return f"{f.Prefix or ''}{str(n).zfill(len(f.Format or '1'))}"
        if f.Type == "GUID":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if f.Type == "RANDOM ID":
            alphabet = {
                "0": string.digits,
                "U": string.ascii_uppercase,
                "0U": string.digits + string.ascii_uppercase,
            }[f.Format or "0U"]
            body = "".join(self.rng.choice(alphabet) for _ in range(f.Length or 12))
            return f"{f.Prefix or ''}{body}"
        if f.Type == "TIMESTAMP" and f.OnInsert:
            return zones.stamp(stamp_now, f.TimeZone)
        return None

    # -------------------------------------------------------- writes

    def _map_values(self, t: Table, values: dict[str, Any], seeding: bool) -> dict[str, Any]:
        """Client field names (case-insensitive) -> stored values, enforcing Caspio's rules."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            if not isinstance(key, str):
                raise QueryError(400, "IncorrectBodyParameter", "Field names must be strings")
            if key.lower() == "pk_id":
                if not seeding:
                    raise QueryError(400, "IncorrectBodyParameter", "Field 'PK_ID' is read-only")
                out["PK_ID"] = int(value)
                continue
            f = t.field(key)
            if f is None:
                raise QueryError(404, "FieldNotFound", f"Field '{key}' not found")
            if f.read_only and not seeding:
                raise QueryError(400, "IncorrectBodyParameter", f"Field '{f.Name}' is read-only")
            if f.Type == "ATTACHMENT" and not seeding:
                raise QueryError(
                    400,
                    "IncorrectBodyParameter",
                    f"Field '{f.Name}' is an attachment: use the attachments endpoint",
                )
            try:
                out[f.column] = to_stored(f, value)
            except WireError as exc:
                raise QueryError(400, "InvalidInputValue", f"{f.Name}: {exc}") from exc
        return out

    def _watching(self, t: Table) -> ChangeSink | None:
        sink = self.sink
        return sink if sink is not None and sink.watches(t.name) else None

    def insert(
        self, table: str, values: dict[str, Any], seeding: bool = False, source: str = "Datasheet"
    ) -> int:
        """Insert one client-written row (POST); returns its PK_ID. `source`: the webhook
        event source the change counts as (the REST routes pass ``RESTAPIs``)."""
        with self.lock:
            t = self._table_or_404(table)
            pk = self.insert_stored(t, self._map_values(t, values, seeding))
            sink = self._watching(t)
            if sink is not None:
                sink.record_changes(t, "insert", [], self.rows_by_pk(t, [pk]), source)
            return pk

    def insert_stored(self, t: Table, stored: dict[str, Any]) -> int:
        """Insert already-converted values, filling generated fields as Caspio would."""
        with self.lock:
            stored = dict(stored)
            now = self.now_utc()
            for f in t.fields:
                if f.column not in stored and f.read_only:
                    v = self.generated(t, f, now)
                    if v is not None:
                        stored[f.column] = v
                elif f.Type == "AUTONUMBER" and stored.get(f.column) is not None:
                    key = f.Name.lower()
                    t.seq[key] = max(t.seq.get(key, 0), int(stored[f.column]))
            cols = list(stored)
            sql = (
                f"INSERT INTO {t.relation} ({', '.join(qi(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})"
                if cols
                else f"INSERT INTO {t.relation} DEFAULT VALUES"
            )
            try:
                cur = self.conn.execute(sql, [stored[c] for c in cols])
            except sqlite3.IntegrityError as exc:
                raise QueryError(400, "InvalidInputValue", f"Unique constraint: {exc}") from exc
            return int(cur.lastrowid or 0)

    def insert_many(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Bulk insert already-stored values (the generator's fast path)."""
        with self.lock:
            t = self._table_or_404(table)
            sql = (
                f"INSERT INTO {t.relation} ({', '.join(qi(c) for c in columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            self.conn.execute("BEGIN")
            try:
                cur = self.conn.executemany(sql, rows)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return cur.rowcount

    def where_pks(self, t: Table, where: str) -> list[int]:
        sql, params = compile_where(t.scope, self.resolve_scope, self.now_text, where)
        try:
            return [
                r[0]
                for r in self.conn.execute(
                    f'SELECT "PK_ID" FROM {t.relation} WHERE {sql} ORDER BY "PK_ID"', params
                )
            ]
        except sqlite3.Error as exc:
            raise sql_error(windows.sqlite_message(exc)) from exc

    def update(
        self, table: str, where: str, values: dict[str, Any], source: str = "Datasheet"
    ) -> list[int]:
        """Update matching rows; TIMESTAMP OnUpdate fields are stamped. Returns PK_IDs."""
        with self.lock:
            t = self._table_or_404(table)
            stored = self._map_values(t, values, seeding=False)
            pks = self.where_pks(t, where)
            if not pks:
                return []
            now = self.now_utc()
            for f in t.fields:
                if f.Type == "TIMESTAMP" and f.OnUpdate:
                    stored[f.column] = zones.stamp(now, f.TimeZone)
            if not stored:
                return pks
            sink = self._watching(t)
            before = self.rows_by_pk(t, pks) if sink is not None else []
            sets = ", ".join(f"{qi(c)} = ?" for c in stored)
            self.conn.execute("BEGIN")
            try:
                for i in range(0, len(pks), 500):
                    chunk = pks[i : i + 500]
                    self.conn.execute(
                        f'UPDATE {t.relation} SET {sets} WHERE "PK_ID" IN '
                        f"({', '.join('?' for _ in chunk)})",
                        [*stored.values(), *chunk],
                    )
                self.conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self.conn.execute("ROLLBACK")
                raise QueryError(400, "InvalidInputValue", f"Unique constraint: {exc}") from exc
            if sink is not None:
                sink.record_changes(t, "update", before, self.rows_by_pk(t, pks), source)
            return pks

    def delete(self, table: str, where: str, source: str = "Datasheet") -> int:
        with self.lock:
            t = self._table_or_404(table)
            pks = self.where_pks(t, where)
            sink = self._watching(t)
            before = self.rows_by_pk(t, pks) if sink is not None and pks else []
            self.conn.execute("BEGIN")
            for i in range(0, len(pks), 500):
                chunk = pks[i : i + 500]
                self.conn.execute(
                    f'DELETE FROM {t.relation} WHERE "PK_ID" IN ({", ".join("?" for _ in chunk)})',
                    chunk,
                )
            self.conn.execute("COMMIT")
            tkey = t.name.lower()
            gone = set(pks)
            for key in [k for k in self.attachments if k[0] == tkey and k[2] in gone]:
                del self.attachments[key]
            if sink is not None and before:
                sink.record_changes(t, "delete", before, [], source)
            return len(pks)

    def delete_all(self, table: str) -> int:
        """Empty a table, as the datasheet's "Delete All" does: no where clause, and no
        webhook event (Caspio documents none for a delete-all). Returns the rows deleted."""
        with self.lock:
            t = self._table_or_404(table)
            cur = self.conn.execute(f"DELETE FROM {t.relation}")
            tkey = t.name.lower()
            for key in [k for k in self.attachments if k[0] == tkey]:
                del self.attachments[key]
            return int(cur.rowcount)

    def _table_or_404(self, name: str) -> Table:
        t = self.tables.get(name.lower())
        if t is None:
            raise QueryError(404, "ObjectNotFound", "Requested object not found")
        return t

    # -------------------------------------------------------- reads

    def run_json(
        self, comp: Compiled, limit: int, offset: int, count: bool
    ) -> tuple[list[bytes], int | None]:
        """One records page as UTF-8 JSON object texts (+ TotalCount when asked), atomically."""
        with self.lock:
            try:
                probe = comp.selectivity_probe_sql(limit + offset + 1)
                if probe is not None:
                    (matches,) = self.conn.execute(*probe).fetchone()
                    comp.selective = matches <= limit + offset
                sql, params = comp.json_sql(limit, offset)
                rows = [r[0] for r in self.conn.execute(sql, params).fetchall()]
                total = None
                if count:
                    csql, cparams = comp.count_sql()
                    total = int(self.conn.execute(csql, cparams).fetchone()[0])
            except sqlite3.Error as exc:
                raise sql_error(windows.sqlite_message(exc)) from exc
        return rows, total

    def run(
        self, comp: Compiled, limit: int, offset: int, count: bool
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Like run_json, parsed (for Python callers)."""
        rows, total = self.run_json(comp, limit, offset, count)
        return [orjson.loads(r) for r in rows], total

    def rows_by_pk(self, t: Table, pks: list[int]) -> list[dict[str, Any]]:
        from .sql import star_columns

        cols = star_columns(t.scope)
        out: list[dict[str, Any]] = []
        with self.lock:
            for i in range(0, len(pks), 500):
                chunk = pks[i : i + 500]
                sql = (
                    f"SELECT {', '.join(c.sql for c in cols)} FROM {t.relation} "
                    f'WHERE "PK_ID" IN ({", ".join("?" for _ in chunk)}) ORDER BY "PK_ID"'
                )
                for r in self.conn.execute(sql, chunk):
                    out.append(
                        {
                            c.name: (c.convert(v) if c.convert else v)
                            for c, v in zip(cols, r, strict=True)
                        }
                    )
        return out

    def all_rows(self, scope: Scope) -> list[dict[str, Any]]:
        from .sql import star_columns

        cols = star_columns(scope)
        sql = (
            f"SELECT {', '.join(c.sql for c in cols)} FROM {scope.relation} "
            f"ORDER BY {', '.join(scope.default_order)}"
        )
        with self.lock:
            rows = self.conn.execute(sql).fetchall()
        return [
            {c.name: (c.convert(v) if c.convert else v) for c, v in zip(cols, r, strict=True)}
            for r in rows
        ]

    def stored_value(self, t: Table, f: Field, pk: int) -> Any:
        with self.lock:
            row = self.conn.execute(
                f'SELECT {qi(f.column)} FROM {t.relation} WHERE "PK_ID" = ?', [pk]
            ).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        with self.lock:
            self.conn.close()


__all__ = ["ChangeSink", "Store", "Table", "View", "Attachment", "real_clock", "wire_converter"]
