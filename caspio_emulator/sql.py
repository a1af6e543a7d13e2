"""The ``q.*`` SQL front: T-SQL fragments -> validated, parameterised SQLite.

Caspio pastes ``q.select``/``q.where``/``q.groupBy``/``q.orderBy`` into a SQL Server query.
The emulator parses each fragment on its own with sqlglot's T-SQL dialect, checks that it is
exactly one expression list of the expected clause (so ``1=1; DROP TABLE x``, a smuggled
``UNION`` or a comment that eats the rest of the statement cannot change the query's shape),
resolves every column against the object's fields, and then *re-emits* SQLite SQL from the
tree with every literal bound as a parameter. Only whitelisted node types are emitted; any
other construct is refused, so nothing outside the named object is reachable except other
Caspio tables/views through single-table subqueries (which Caspio allows in ``q.where``).

Text comparison follows SQL Server's default collation (case-insensitive, trailing spaces
ignored): text columns carry the ``CASPIO_CI`` collation and ``LIKE`` is replaced by a
T-SQL-style, case-insensitive implementation (see store.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from . import implicit, windows
from .wire import (
    DATE_TYPES,
    LIST_TYPES,
    Converter,
    Field,
    json_sql,
    wire_converter,
)

PLACEHOLDER = "__caspio_object__"

# The hidden column that holds each table row's ready-encoded star-select JSON (see
# ``star_json_sql``). It is not in ``Scope.fields``, through which every q.* column and every
# written field name is resolved, so no client can read, filter, sort or write it; table field
# names start with a letter (a directory field that takes the name turns the column off).
WIRE_COLUMN = "_wire_json"


class QueryError(Exception):
    """A q.* problem, carrying the Caspio error code and HTTP status it maps to."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def sql_error(message: str) -> QueryError:
    return QueryError(400, "SqlServerError", message)


def field_not_found(name: str) -> QueryError:
    return QueryError(404, "FieldNotFound", f"Field '{name}' not found")


@dataclass
class Scope:
    """A queryable object: its Caspio name, SQLite relation, fields (lower-cased keys,
    PK_ID included) and default order (SQLite expressions)."""

    name: str
    relation: str
    fields: dict[str, Field]
    default_order: list[str]
    is_view: bool = False
    hide_pk: bool = False  # directory users have no PK_ID on the wire
    # the relation's column holding each row's star-select JSON (None: build it per page)
    wire_column: str | None = None
    # fields q.* may name but that /fields and star selects never show: a view's
    # _PK_ID_<Table> keys (view_keys.py); lower-cased names, like `fields`
    hidden: dict[str, Field] = field(default_factory=dict)


Resolver = Callable[[str], "Scope | None"]


def qi(name: str) -> str:
    """Quote a SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Column:
    """One output column of a records answer (`ftype`: the Caspio type its values carry)."""

    name: str
    sql: str
    convert: Converter
    ftype: str | None = None


@dataclass
class Compiled:
    """A compiled records query, ready for LIMIT/OFFSET."""

    scope: Scope
    columns: list[Column]
    where: str | None
    group: str | None
    having: str | None
    order: str | None
    distinct: bool
    aggregate: bool
    params_select: list[Any] = field(default_factory=list)
    params_where: list[Any] = field(default_factory=list)
    params_group: list[Any] = field(default_factory=list)
    params_order: list[Any] = field(default_factory=list)
    # set for a star select over a table: the page is read from this column, not rebuilt
    wire_column: str | None = None
    # set when the where matches few rows: SQLite is told so (see Store.run_json)
    selective: bool = False

    def selectivity_probe_sql(self, rows: int) -> tuple[str, list[Any]] | None:
        """Counts up to ``rows`` matches through the where's indexes, or None if not worth it.

        SQL Server's optimizer knows from statistics that ``Updated > @mark`` matches few rows
        and seeks the index, sorting the few by PK_ID; SQLite without statistics always scans
        the table in PK order to avoid the sort, which costs a full scan when nothing matches
        (an unchanged incremental run). A where that bounds PK_ID, or a view's source key
        (``_PK_ID_<Table>``, the view column ``__k{i}``), is already a key range."""
        if not self.where or self.group or self.aggregate:
            return None
        if '"PK_ID"' in self.where or '"__k' in self.where:
            return None
        sql = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.scope.relation} "
            f"WHERE likelihood(({self.where}), 0.001) LIMIT ?)"
        )
        return sql, [*self.params_where, rows]

    def select_sql(self, limit: int, offset: int) -> tuple[str, list[Any]]:
        cols = ", ".join(f"{c.sql} AS {qi('c' + str(i))}" for i, c in enumerate(self.columns))
        sql = f"SELECT {'DISTINCT ' if self.distinct else ''}{cols} FROM {self.scope.relation}"
        params = list(self.params_select)
        sql, params = self._tail(sql, params, with_order=True)
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
        return sql, params

    def json_sql(self, limit: int, offset: int) -> tuple[str, list[Any]]:
        """The page as one UTF-8 JSON object (bytes) per row.

        A star select over a table reads each row's stored wire JSON (the table's hidden
        generated column, byte for byte what the json_object path below builds); any other
        query has SQLite build the objects with ``json_object`` over the page's rows."""
        if self.wire_column:
            sql, params = self._tail(
                f"SELECT CAST({qi(self.wire_column)} AS BLOB) FROM {self.scope.relation}",
                [],
                with_order=True,
            )
            return sql + " LIMIT ? OFFSET ?", [*params, limit, offset]
        inner, params = self.select_sql(limit, offset)
        key_params: list[Any] = []
        pairs = []
        for i, c in enumerate(self.columns):
            pairs.append(("?", json_sql(qi("c" + str(i)), c.ftype)))
            key_params.append(c.name)
        return f"SELECT CAST({json_object_sql(pairs)} AS BLOB) FROM ({inner})", key_params + params

    def count_sql(self) -> tuple[str, list[Any]]:
        """TotalCount: rows matching the where (groups, for grouped or aggregate queries)."""
        if not (self.group or self.aggregate or self.distinct):
            sql, params = self._tail(f"SELECT COUNT(*) FROM {self.scope.relation}", [], False)
            return sql, params
        cols = ", ".join(f"{c.sql} AS {qi('c' + str(i))}" for i, c in enumerate(self.columns))
        inner = f"SELECT {'DISTINCT ' if self.distinct else ''}{cols} FROM {self.scope.relation}"
        inner, params = self._tail(inner, list(self.params_select), False)
        return f"SELECT COUNT(*) FROM ({inner})", params

    def _tail(self, sql: str, params: list[Any], with_order: bool) -> tuple[str, list[Any]]:
        if self.where:
            where = f"likelihood(({self.where}), 0.001)" if self.selective else self.where
            sql += f" WHERE {where}"
            params += self.params_where
        if self.group:
            sql += f" GROUP BY {self.group}"
            if self.having:
                sql += f" HAVING {self.having}"
            params += self.params_group
        if with_order and self.order:
            sql += f" ORDER BY {self.order}"
            params += self.params_order
        return sql, params


def json_object_sql(pairs: list[tuple[str, str]]) -> str:
    """``json_object(k1, v1, ...)`` over (key SQL, value SQL) pairs, in order.

    json_object takes at most 127 arguments, so longer lists are built as several objects and
    spliced: every object but the first loses its ``{``, every one but the last its ``}``
    (``substr(x, -1, -N)`` is all of x but its last character), and each object appears once
    in the SQL, so its ``?`` keys are bound once."""
    chunks = [
        f"json_object({', '.join(f'{k}, {v}' for k, v in pairs[start : start + 60])})"
        for start in range(0, len(pairs), 60)
    ]
    if len(chunks) <= 1:
        return chunks[0] if chunks else "json_object()"
    parts = []
    for i, chunk in enumerate(chunks):
        if i > 0:
            chunk = f"substr({chunk}, 2)"
        if i < len(chunks) - 1:
            chunk = f"substr({chunk}, -1, -2147483647)"
        parts.append(chunk)
    return " || ',' || ".join(parts)


def sql_text(value: str) -> str:
    """A SQLite string literal."""
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- parsing

_AGGS = (exp.Count, exp.Min, exp.Max, exp.Sum, exp.Avg)


_LIT_RE = re.compile(r"N?'(?:[^']|'')*'|(?<![\w@$#.])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?![\w.])")


def _parse(clause: str, template: str, allowed: set[str]) -> exp.Select:
    """Parse with a cache keyed on the clause's *shape*: literals are lifted out first, so
    keyset pages (``PK_ID > 1000``, ``PK_ID > 2000``, ...) parse once. Clauses with comments,
    brackets, quotes-as-identifiers or variables take the plain path."""
    if any(tok in clause for tok in ("--", "/*", "[", '"', "@")):
        return _parse_text(clause, template, frozenset(allowed))
    lits: list[str] = []

    def lift(m: re.Match[str]) -> str:
        lits.append(m.group(0))
        return f"@__l{len(lits) - 1}"

    skeleton = _LIT_RE.sub(lift, clause)
    try:
        cached = _parse_skeleton(skeleton, template, frozenset(allowed))
    except QueryError:
        return _parse_text(clause, template, frozenset(allowed))  # the user's own error text
    tree = cached.copy()
    for node in list(tree.find_all(exp.Parameter)):
        name = node.name if isinstance(node.this, exp.Expression) else str(node.this)
        if not name.startswith("__l"):
            return _parse_text(clause, template, frozenset(allowed))
        raw = lits[int(name[3:])]
        if raw.startswith("N'"):
            lit: exp.Expression = exp.National(this=raw[2:-1].replace("''", "'"))
        elif raw.startswith("'"):
            lit = exp.Literal.string(raw[1:-1].replace("''", "'"))
        else:
            lit = exp.Literal.number(raw)
        node.replace(lit)
    return tree


@lru_cache(maxsize=2048)
def _parse_skeleton(skeleton: str, template: str, allowed: frozenset[str]) -> exp.Select:
    return _parse_text(skeleton, template, allowed)


def _parse_text(clause: str, template: str, allowed: frozenset[str]) -> exp.Select:
    text = template.format(clause)
    try:
        trees = [t for t in sqlglot.parse(text, read="tsql") if t is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise sql_error(f"Incorrect syntax: {first}") from exc
    if len(trees) != 1:
        raise sql_error("Incorrect syntax: only one expression is allowed")
    tree = trees[0]
    if not isinstance(tree, exp.Select):
        raise sql_error(f"Incorrect syntax near '{clause[:60]}'")
    for key, value in tree.args.items():
        if value and key not in allowed:
            raise sql_error(f"Incorrect syntax near '{clause[:60]}' ({key} is not allowed)")
    src = tree.args.get("from_") or tree.args.get("from")
    table = src.this if isinstance(src, exp.From) else None
    if (
        not isinstance(table, exp.Table)
        or table.name != PLACEHOLDER
        or table.args.get("db")
        or table.args.get("catalog")
        or any(v for k, v in table.args.items() if k != "this")
    ):
        raise sql_error(f"Incorrect syntax near '{clause[:60]}'")
    return tree


class _Emitter:
    """Walks one validated tree and emits SQLite with bound parameters."""

    def __init__(
        self,
        scope: Scope,
        resolver: Resolver,
        now: Callable[[], str],
        clause: str,
        aliases: dict[str, str] | None = None,
        depth: int = 0,
    ) -> None:
        self.scope = scope
        self.resolver = resolver
        self.now = now
        self.clause = clause
        self.aliases = aliases or {}
        self.params: list[Any] = []
        self.depth = depth
        self.allow_aggregates = clause in ("select", "order", "having")

    # -- type inference: just enough to normalise literals against dates and Yes/No
    def field_of(self, node: exp.Expression) -> Field | None:
        if isinstance(node, exp.Paren):
            return self.field_of(node.this)
        if isinstance(node, exp.Column) and not self.aliases.get(node.name.lower()):
            try:
                return self.resolve(node)
            except QueryError:
                return None
        if isinstance(node, (exp.Min, exp.Max)):
            return self.field_of(node.this)
        if isinstance(node, exp.Window) and isinstance(node.this, windows.FIELD_TYPED):
            return self.field_of(node.this.this)  # MIN/MAX/LAG/... OVER keep the field's form
        return None

    def kind(self, node: exp.Expression) -> str | None:
        f = self.field_of(node)
        if f is not None:
            if f.Type in DATE_TYPES:
                return "date"
            if f.Type == "YES/NO":
                return "bool"
            if f.Type in ("NUMBER", "INTEGER", "CURRENCY", "AUTONUMBER"):
                return "number"
            return "text"
        if isinstance(node, (exp.Literal, exp.National)):
            return "text" if _is_text(node) else "number"
        if isinstance(node, exp.CurrentTimestamp):
            return "date"
        if isinstance(node, (exp.Upper, exp.Lower, exp.Concat)):
            return "text"
        if isinstance(node, exp.Add):
            k1, k2 = self.kind(node.this), self.kind(node.expression)
            return "text" if "text" in (k1, k2) else k1 or k2
        if isinstance(node, (exp.Case, exp.If)):
            branches = [b.args.get("true") for b in node.args.get("ifs") or []]
            branches += [node.args.get(k) for k in ("true", "false", "default")]
            kinds = [self.kind(b) for b in branches if b is not None]
            return next((k for k in kinds if k), None)
        return None

    def resolve(self, col: exp.Column) -> Field:
        name = col.name
        qual = col.table
        if col.args.get("db") or col.args.get("catalog"):
            raise field_not_found(col.sql(dialect="tsql"))
        f = self.scope.fields.get(name.lower()) or self.scope.hidden.get(name.lower())
        if qual and qual.lower() != self.scope.name.lower():
            # a view field may be named Table.Field (its TableFieldName)
            wanted = f"{qual}.{name}".lower()
            f = next(
                (
                    x
                    for x in self.scope.fields.values()
                    if (x.TableFieldName or "").lower() == wanted
                ),
                None,
            )
        if f is None:
            raise field_not_found(f"{qual}.{name}" if qual else name)
        if f.Type == "PASSWORD":
            raise sql_error(f"Password field '{f.Name}' cannot be read or filtered")
        return f

    def lit(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def peer_type(self, node: exp.Expression) -> tuple[str | None, str | None]:
        """What a string literal compared with `node` converts to: (kind, Caspio field type)."""
        f = self.field_of(node)
        return self.kind(node), (f.Type if f is not None else None)

    def literal_as(
        self, node: exp.Expression, kind: str | None, field_type: str | None = None
    ) -> str:
        """Emit a literal, converting a string the way SQL Server converts it for comparison
        with a `kind` (or `field_type`) operand: implicit.py."""
        if _is_text(node):
            target = implicit.sql_type(kind, field_type)
            if target is None:
                return self.lit(node.this)
            try:
                national = isinstance(node, exp.National)
                return self.lit(implicit.convert(node.this, target, national))
            except implicit.ConversionError as exc:
                raise sql_error(str(exc)) from exc
        if isinstance(node, exp.Paren):
            return f"({self.literal_as(node.this, kind, field_type)})"
        return self.emit(node)

    def emit(self, node: exp.Expression) -> str:  # noqa: C901 - one dispatch table
        e = self.emit
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise sql_error("'*' is only allowed alone in q.select")
            alias = self.aliases.get(node.name.lower()) if not node.table else None
            if alias:
                return alias
            f = self.resolve(node)
            if f.Type in LIST_TYPES and self.clause != "select":
                raise sql_error(f"List field '{f.Name}' cannot be used in {self.clause}")
            return qi(f.column)
        if isinstance(node, (exp.Literal, exp.National)):
            if _is_text(node):
                return self.lit(node.this)
            text = node.this
            try:
                return self.lit(int(text))
            except ValueError:
                return self.lit(float(text))
        if isinstance(node, exp.Null):
            return "NULL"
        if isinstance(node, exp.Boolean):
            return "1" if node.this else "0"
        if isinstance(node, exp.Paren):
            return f"({e(node.this)})"
        if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
            op = {
                exp.EQ: "=",
                exp.NEQ: "<>",
                exp.GT: ">",
                exp.GTE: ">=",
                exp.LT: "<",
                exp.LTE: "<=",
            }[type(node)]
            left, right = node.this, node.expression
            lk, rk = self.peer_type(left), self.peer_type(right)
            return f"({self.literal_as(left, *rk)} {op} {self.literal_as(right, *lk)})"
        if isinstance(node, exp.And):
            return f"({e(node.this)} AND {e(node.expression)})"
        if isinstance(node, exp.Or):
            return f"({e(node.this)} OR {e(node.expression)})"
        if isinstance(node, exp.Not):
            return f"(NOT {e(node.this)})"
        if isinstance(node, exp.Is):
            return f"({e(node.this)} IS {e(node.expression)})"
        if isinstance(node, exp.Between):
            k = self.peer_type(node.this)
            left = e(node.this)  # first: parameters are bound in the order they appear
            low = self.literal_as(node.args["low"], *k)
            high = self.literal_as(node.args["high"], *k)
            return f"({left} BETWEEN {low} AND {high})"
        if isinstance(node, exp.In):
            k = self.peer_type(node.this)
            left = e(node.this)
            if node.args.get("query") is not None:
                return f"({left} IN ({self.subquery(node.args['query'], single=True)}))"
            if node.args.get("unnest") or node.args.get("field"):
                raise sql_error("Incorrect syntax near IN")
            items = ", ".join(self.literal_as(x, *k) for x in node.expressions)
            return f"({left} IN ({items}))"
        if isinstance(node, exp.Exists):
            return f"(EXISTS ({self.subquery(node.this, single=False)}))"
        if isinstance(node, exp.Escape):
            like = node.this
            if not isinstance(like, exp.Like):
                raise sql_error("Incorrect syntax near ESCAPE")
            return f"({e(like.this)} LIKE {e(like.expression)} ESCAPE {e(node.expression)})"
        if isinstance(node, exp.Like):
            return f"({e(node.this)} LIKE {e(node.expression)})"
        if isinstance(node, exp.Neg):
            return f"(-{e(node.this)})"
        if isinstance(node, exp.Case):
            operand = node.args.get("this")
            k = self.peer_type(operand) if operand is not None else (None, None)
            parts = ["CASE"] + ([e(operand)] if operand is not None else [])
            for branch in node.args.get("ifs") or []:
                cond = self.literal_as(branch.this, *k) if operand is not None else e(branch.this)
                parts += ["WHEN", cond, "THEN", e(branch.args["true"])]
            if node.args.get("default") is not None:
                parts += ["ELSE", e(node.args["default"])]
            return "(" + " ".join(parts) + " END)"
        if isinstance(node, exp.If):  # IIF(condition, then, else)
            other = node.args.get("false")
            return (
                f"(CASE WHEN {e(node.this)} THEN {e(node.args['true'])} "
                f"ELSE {e(other) if other is not None else 'NULL'} END)"
            )
        if isinstance(node, exp.Add):
            op = "||" if self.kind(node) == "text" else "+"
            return f"({e(node.this)} {op} {e(node.expression)})"
        if isinstance(node, (exp.Sub, exp.Mul, exp.Div, exp.Mod)):
            op = {exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}[type(node)]
            return f"({e(node.this)} {op} {e(node.expression)})"
        if isinstance(node, _AGGS):
            if not self.allow_aggregates:
                raise sql_error(f"An aggregate may not appear in the {self.clause} clause")
            name = {exp.Count: "COUNT", exp.Min: "MIN", exp.Max: "MAX", exp.Sum: "SUM"}.get(
                type(node), "AVG"
            )
            arg = node.this
            saved, self.allow_aggregates = self.allow_aggregates, False
            try:
                if isinstance(arg, exp.Star):
                    if name != "COUNT":
                        raise sql_error(f"{name}(*) is not valid")
                    inner = "*"
                elif isinstance(arg, exp.Distinct):
                    if len(arg.expressions) != 1:
                        raise sql_error("DISTINCT aggregates take one expression")
                    inner = "DISTINCT " + e(arg.expressions[0])
                else:
                    inner = e(arg)
            finally:
                self.allow_aggregates = saved
            return f"{name}({inner})"
        if isinstance(node, exp.Upper):
            return f"caspio_upper({e(node.this)})"
        if isinstance(node, exp.Lower):
            return f"caspio_lower({e(node.this)})"
        if isinstance(node, exp.Length):
            arg = node.this
            if isinstance(arg, exp.Cast) and arg.to.is_type(exp.DataType.Type.TEXT):
                arg = arg.this
            return f"length(rtrim({e(arg)}))"
        if isinstance(node, (exp.Year, exp.Month, exp.Day)):
            start, size = {exp.Year: (1, 4), exp.Month: (6, 2), exp.Day: (9, 2)}[type(node)]
            return f"CAST(substr({e(node.this)}, {start}, {size}) AS INTEGER)"
        if isinstance(node, exp.Extract):
            part = node.this.name.lower() if isinstance(node.this, exp.Expression) else ""
            spans = {
                "year": (1, 4),
                "yy": (1, 4),
                "yyyy": (1, 4),
                "month": (6, 2),
                "mm": (6, 2),
                "m": (6, 2),
                "day": (9, 2),
                "dd": (9, 2),
                "d": (9, 2),
                "hour": (12, 2),
                "hh": (12, 2),
                "minute": (15, 2),
                "mi": (15, 2),
                "n": (15, 2),
                "second": (18, 2),
                "ss": (18, 2),
                "s": (18, 2),
            }
            if part not in spans:
                raise sql_error(f"DATEPART {part!r} is not supported by the emulator")
            start, size = spans[part]
            return f"CAST(substr({e(node.expression)}, {start}, {size}) AS INTEGER)"
        if isinstance(node, exp.Coalesce):
            args = [node.this, *node.expressions]
            return f"coalesce({', '.join(e(a) for a in args)})"
        if isinstance(node, exp.Abs):
            return f"abs({e(node.this)})"
        if isinstance(node, exp.Round):
            digits = node.args.get("decimals")
            return f"round({e(node.this)}, {e(digits) if digits is not None else '0'})"
        if isinstance(node, exp.CurrentTimestamp):
            return self.lit(self.now())
        if isinstance(node, exp.Cast):
            to = node.to
            if to.is_type(*exp.DataType.INTEGER_TYPES) or to.is_type(exp.DataType.Type.BIT):
                return f"CAST({e(node.this)} AS INTEGER)"
            if to.is_type(*exp.DataType.REAL_TYPES) or to.is_type(exp.DataType.Type.MONEY):
                return f"CAST({e(node.this)} AS REAL)"
            if to.is_type(*exp.DataType.TEXT_TYPES):
                return f"CAST({e(node.this)} AS TEXT)"
            if to.is_type(*exp.DataType.TEMPORAL_TYPES):
                return self.literal_as(node.this, "date")
            raise sql_error(f"CAST to {to.sql(dialect='tsql')} is not supported by the emulator")
        if isinstance(node, exp.Window):
            return windows.emit_window(self, node)
        if isinstance(node, exp.Subquery):
            return windows.emit_scalar_subquery(self, node)
        if isinstance(node, exp.Anonymous):
            raise sql_error(f"'{node.name}' is not a recognized built-in function name.")
        if isinstance(node, exp.Star):
            raise sql_error("'*' is only allowed alone in q.select or in COUNT(*)")
        raise sql_error(
            f"Incorrect syntax near '{node.sql(dialect='tsql')[:80]}' (not supported in q.*)"
        )

    def subquery(self, node: exp.Expression, single: bool, alias: str | None = None) -> str:
        """A single-table subquery over another Caspio table or view, validated like the rest
        (`alias` names its one column, for a scalar subquery's wrapper)."""
        if isinstance(node, exp.Subquery):
            node = node.this
        if not isinstance(node, exp.Select) or self.depth >= 3:
            raise sql_error("Only simple subqueries over one table or view are allowed")
        allowed = {"expressions", "from_", "from", "where", "distinct", "group", "having"}
        for key, value in node.args.items():
            if value and key not in allowed:
                raise sql_error(f"Subqueries cannot use {key}")
        src = node.args.get("from_") or node.args.get("from")
        table = src.this if isinstance(src, exp.From) else None
        if not isinstance(table, exp.Table) or any(
            v for k, v in table.args.items() if k not in ("this", "alias")
        ):
            raise sql_error("Subqueries must read one table or view")
        scope = self.resolver(table.name)
        if scope is None:
            raise QueryError(404, "ObjectNotFound", f"Table or view '{table.name}' not found")
        inner = _Emitter(scope, self.resolver, self.now, "subquery", depth=self.depth + 1)
        inner.allow_aggregates = True
        if single and len(node.expressions) != 1:
            raise sql_error(
                "Only one expression can be specified in the select list when the subquery is "
                "not introduced with EXISTS."
            )
        cols = []
        for x in node.expressions:
            if isinstance(x, exp.Star):
                cols.append("1")
            else:
                cols.append(inner.emit(x.this if isinstance(x, exp.Alias) else x))
        if alias is not None:
            cols = [f"{cols[0]} AS {qi(alias)}"]
        sql = f"SELECT {'DISTINCT ' if node.args.get('distinct') else ''}{', '.join(cols)}"
        sql += f" FROM {scope.relation}"
        where = node.args.get("where")
        if where is not None:
            inner.allow_aggregates = False
            inner.clause = "where"
            sql += f" WHERE {inner.emit(where.this)}"
        group = node.args.get("group")
        if group is not None:
            inner.clause = "group"
            sql += " GROUP BY " + ", ".join(inner.emit(g) for g in group.expressions)
        having = node.args.get("having")
        if having is not None:
            inner.allow_aggregates = True
            inner.clause = "having"
            sql += f" HAVING {inner.emit(having.this)}"
        self.params.extend(inner.params)
        return sql


def _is_text(node: exp.Expression) -> bool:
    """A string literal, ``N'...'`` included (sqlglot's National is not ``is_string``)."""
    return isinstance(node, exp.National) or (isinstance(node, exp.Literal) and node.is_string)


def _has_aggregate(node: exp.Expression) -> bool:
    """Whether `node` aggregates its rows (``SUM(x) OVER (...)`` does not: it keeps them)."""
    return any(isinstance(n, _AGGS) and not isinstance(n.parent, exp.Window) for n in node.walk())


def _output_type(em: _Emitter, node: exp.Expression) -> tuple[Converter, str | None]:
    """A select item keeps its field's wire form when it is the field (or MIN/MAX of it)."""
    f = em.field_of(node)
    if f is not None:
        return wire_converter(f), f.Type
    return None, None


def star_columns(scope: Scope) -> list[Column]:
    """``q.select=*``: PK_ID first, then every field but PASSWORD, in display order."""
    out = [] if scope.hide_pk else [Column("PK_ID", qi(scope.fields["pk_id"].column), None)]
    for f in scope.fields.values():
        if f.Name.upper() == "PK_ID" or f.Type == "PASSWORD":
            continue
        out.append(Column(f.Name, qi(f.column), wire_converter(f), f.Type))
    return out


def star_json_sql(scope: Scope) -> str:
    """The expression that renders a row of `scope`'s relation as its star-select wire JSON:
    the same columns, keys, order and conversions as ``Compiled.json_sql`` builds for
    ``q.select=*``, with the keys as literals (a table's generated column stores it)."""
    return json_object_sql(
        [(sql_text(c.name), json_sql(c.sql, c.ftype)) for c in star_columns(scope)]
    )


def compile_query(
    scope: Scope,
    resolver: Resolver,
    now: Callable[[], str],
    select: str | None = None,
    where: str | None = None,
    group_by: str | None = None,
    order_by: str | None = None,
) -> Compiled:
    """Validate the q.* clauses against `scope` and compile them to SQLite."""
    columns: list[Column] = []
    params_select: list[Any] = []
    distinct = False
    aggregate = False
    if select and select.strip() and select.strip() != "*":
        tree = _parse(
            select, "SELECT {} FROM " + PLACEHOLDER, {"expressions", "from_", "from", "distinct"}
        )
        distinct = bool(tree.args.get("distinct"))
        em = _Emitter(scope, resolver, now, "select")
        for item in tree.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                start = len(em.params)
                columns.extend(star_columns(scope))
                del em.params[start:]
                continue
            inner = item.this if isinstance(item, exp.Alias) else item
            sql = em.emit(inner)
            if isinstance(item, exp.Alias):
                name = item.alias
            elif isinstance(inner, exp.Column):
                name = inner.name
            else:
                name = inner.sql(dialect="tsql")
            aggregate = aggregate or _has_aggregate(inner)
            conv, ftype = _output_type(em, inner)
            columns.append(Column(name, sql, conv, ftype))
        params_select = em.params
    else:
        columns = star_columns(scope)
    comp = Compiled(scope, columns, None, None, None, None, distinct, aggregate)
    comp.params_select = params_select
    star = not (select and select.strip() and select.strip() != "*")
    if star and not (group_by and group_by.strip()):
        comp.wire_column = scope.wire_column

    if where and where.strip():
        tree = _parse(
            where,
            "SELECT 1 FROM " + PLACEHOLDER + " WHERE ({})",
            {"expressions", "from_", "from", "where"},
        )
        em = _Emitter(scope, resolver, now, "where")
        comp.where = em.emit(tree.args["where"].this)
        comp.params_where = em.params

    if group_by and group_by.strip():
        tree = _parse(
            group_by,
            "SELECT 1 FROM " + PLACEHOLDER + " GROUP BY {}",
            {"expressions", "from_", "from", "group", "having"},
        )
        em = _Emitter(scope, resolver, now, "group")
        comp.group = ", ".join(em.emit(g) for g in tree.args["group"].expressions)
        having = tree.args.get("having")
        if having is not None:
            em.clause = "having"
            em.allow_aggregates = True
            comp.having = em.emit(having.this)
        comp.params_group = em.params

    if order_by and order_by.strip():
        tree = _parse(
            order_by,
            "SELECT 1 FROM " + PLACEHOLDER + " ORDER BY {}",
            {"expressions", "from_", "from", "order"},
        )
        # ORDER BY may name select aliases (SQL Server resolves them first)
        select_aliases = {
            c.name.lower(): qi("c" + str(i))
            for i, c in enumerate(columns)
            if select and select.strip() not in ("", "*")
        }
        em = _Emitter(scope, resolver, now, "order", aliases=select_aliases)
        parts = []
        for o in tree.args["order"].expressions:
            target = o.this if isinstance(o, exp.Ordered) else o
            if isinstance(target, exp.Literal) and not target.is_string:
                raise sql_error("ORDER BY by position is not supported")
            sql = em.emit(target)
            desc = isinstance(o, exp.Ordered) and bool(o.args.get("desc"))
            parts.append(sql + (" DESC" if desc else ""))
        comp.order = ", ".join(parts)
        comp.params_order = em.params
    elif not (comp.group or aggregate or distinct):
        comp.order = ", ".join(scope.default_order)
    return comp


def compile_where(
    scope: Scope, resolver: Resolver, now: Callable[[], str], where: str
) -> tuple[str, list[Any]]:
    """Just a where clause (PUT/DELETE)."""
    tree = _parse(
        where,
        "SELECT 1 FROM " + PLACEHOLDER + " WHERE ({})",
        {"expressions", "from_", "from", "where"},
    )
    em = _Emitter(scope, resolver, now, "where")
    return em.emit(tree.args["where"].this), em.params


def compile_expression(scope: Scope, text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """One T-SQL scalar expression over `scope`'s own fields (a formula field) as SQLite, with
    every literal inlined (a generated column can bind no parameter). Returns the SQL, the
    expression's kind ("text", "number", "date", "bool" or None) and the lower-cased names of
    the fields it reads. Subqueries, aggregates and GETDATE() are refused: a generated column
    must be a deterministic function of its own row."""
    tree = _parse(text, "SELECT {} FROM " + PLACEHOLDER, {"expressions", "from_", "from"})
    if len(tree.expressions) != 1 or isinstance(tree.expressions[0], exp.Alias):
        raise sql_error("A formula is exactly one expression, without an alias")
    node = tree.expressions[0]
    for sub in node.walk():
        if isinstance(sub, (exp.Select, exp.Subquery, exp.Exists)):
            raise sql_error("A formula reads its own row only: subqueries are not allowed")
        if isinstance(sub, exp.CurrentTimestamp):
            raise sql_error("GETDATE() is not supported in formulas by the emulator")
    em = _Emitter(scope, lambda _name: None, lambda: "", "formula")
    pieces = em.emit(node).split("?")  # field names cannot hold a "?": only placeholders do
    out = [pieces[0]]
    for value, rest in zip(em.params, pieces[1:], strict=True):
        if isinstance(value, str):
            out.append(sql_text(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise sql_error(f"Arithmetic overflow in formula literal {value!r}")
        else:
            out.append(repr(value))
        out.append(rest)
    refs = tuple(dict.fromkeys(em.resolve(c).Name.lower() for c in node.find_all(exp.Column)))
    return "".join(out), em.kind(node), refs
