"""Window functions and scalar subqueries in the q.* SQL front.

Caspio runs ``q.select`` on SQL Server, so ``ROW_NUMBER() OVER (ORDER BY PK_ID) AS rn``,
``SUM(Total) OVER (PARTITION BY Status)`` or ``(SELECT COUNT(*) FROM Orders) AS n`` work there.
SQLite (3.25+) evaluates the same window functions with the same defaults (the frame is the
whole partition without ``ORDER BY``, ``RANGE UNBOUNDED PRECEDING`` to the current row with
it; NULLs sort first), so the emulator re-emits them; every argument, ``PARTITION BY`` and
``ORDER BY`` expression goes through the same validating emitter as the rest of q.* (fields
resolved against the object, literals bound, nothing but the account's tables reachable).
SQL Server's own rules are enforced where SQLite is laxer: windows only in the select list and
ORDER BY, ranking/offset functions need an ``ORDER BY`` and take no frame, ``RANGE`` frames only
with ``UNBOUNDED``/``CURRENT ROW``, no window inside another window or an aggregate.

A scalar subquery (one table or view, uncorrelated, as ``Emitter.subquery`` checks) must give
at most one row: SQLite would silently take the first, SQL Server fails the query, so the
emitted SQL counts up to two rows and ``caspio_scalar`` raises on two (see ``sqlite_message``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    from .sql import _Emitter

# window functions whose value is one of the field's own values (so it keeps the wire form)
FIELD_TYPED = (exp.Min, exp.Max, exp.FirstValue, exp.LastValue, exp.Lag, exp.Lead)

_RANKING: dict[type[exp.Expression], str] = {
    exp.RowNumber: "row_number",
    exp.Rank: "rank",
    exp.DenseRank: "dense_rank",
    exp.PercentRank: "percent_rank",
    exp.CumeDist: "cume_dist",
}
_VALUE: dict[type[exp.Expression], str] = {
    exp.FirstValue: "first_value",
    exp.LastValue: "last_value",
}
_ONE_ARG = (exp.Ntile, exp.FirstValue, exp.LastValue)
_OFFSET = (exp.Lag, exp.Lead)
_AGGREGATES = (exp.Count, exp.Min, exp.Max, exp.Sum, exp.Avg)
_WINDOW_CLAUSES = ("select", "order", "subquery")
SCALAR_TOO_MANY = (
    "Subquery returned more than 1 value. This is not permitted when the subquery follows "
    "=, !=, <, <= , >, >= or when the subquery is used as an expression."
)


def _error(message: str) -> Exception:
    from .sql import sql_error

    return sql_error(message)


def _frame_bound(em: _Emitter, value: Any, side: Any, kind: str) -> str:
    """One end of a ``ROWS``/``RANGE`` frame, as SQLite text (offsets are inlined integers)."""
    text = value if isinstance(value, str) else None
    if text and text.upper() in ("UNBOUNDED", "CURRENT ROW"):
        return text.upper() + (f" {str(side).upper()}" if text.upper() == "UNBOUNDED" else "")
    if kind == "RANGE":
        raise _error(
            "RANGE is only supported with UNBOUNDED and CURRENT ROW window frame delimiters."
        )
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return f"{int(value.this)} {str(side).upper()}"
    raise _error("The window frame offset must be a non-negative integer literal.")


def emit_window(em: _Emitter, node: exp.Window) -> str:
    """``fn(...) OVER (PARTITION BY ... ORDER BY ... frame)`` as SQLite, validated."""
    if em.clause not in _WINDOW_CLAUSES:
        raise _error("Windowed functions can only appear in the SELECT or ORDER BY clauses.")
    extra = [k for k, v in node.args.items() if v and k not in ("this", "partition_by", "order")]
    if any(k not in ("spec", "over") for k in extra) or str(node.args.get("over")) != "OVER":
        raise _error(f"Incorrect syntax near '{node.sql(dialect='tsql')[:80]}'")
    fn = node.this
    order = node.args.get("order")
    spec = node.args.get("spec")
    saved = em.clause, em.allow_aggregates
    em.clause, em.allow_aggregates = "window", False  # a window inside a window is refused
    try:
        if type(fn) in _RANKING or isinstance(fn, (*_ONE_ARG, *_OFFSET)):
            name = _RANKING.get(type(fn)) or _VALUE.get(type(fn)) or type(fn).__name__.lower()
            if order is None:
                raise _error(
                    f"The function '{name.upper()}' must have an OVER clause with ORDER BY."
                )
            if spec is not None and not isinstance(fn, (exp.FirstValue, exp.LastValue)):
                raise _error(f"The function '{name.upper()}' may not have a window frame.")
            args: list[exp.Expression] = []
            if isinstance(fn, _ONE_ARG):
                args = [fn.this]
            elif isinstance(fn, _OFFSET):
                args = [a for a in (fn.this, fn.args.get("offset"), fn.args.get("default")) if a]
            call = f"{name}({', '.join(em.emit(a) for a in args)})"
        elif isinstance(fn, _AGGREGATES):
            em.allow_aggregates = True  # the function itself; its argument refuses aggregates
            call = em.emit(fn)
            em.allow_aggregates = False
        else:
            raise _error(
                f"'{fn.sql(dialect='tsql')[:60]}' is not supported as a window function "
                "by the emulator"
            )
        # a grouped query may order or partition its windows by aggregates
        em.allow_aggregates = saved[1]
        parts = []
        partition = node.args.get("partition_by") or []
        if partition:
            parts.append("PARTITION BY " + ", ".join(em.emit(p) for p in partition))
        if order is not None:
            keys = []
            for o in order.expressions:
                target = o.this if isinstance(o, exp.Ordered) else o
                desc = isinstance(o, exp.Ordered) and bool(o.args.get("desc"))
                keys.append(em.emit(target) + (" DESC" if desc else ""))
            parts.append("ORDER BY " + ", ".join(keys))
        if spec is not None:
            if order is None:
                raise _error("A window frame requires an ORDER BY in the OVER clause.")
            kind = str(spec.args.get("kind") or "").upper()
            if kind not in ("ROWS", "RANGE") or spec.args.get("exclude"):
                raise _error(f"Incorrect syntax near '{spec.sql(dialect='tsql')[:60]}'")
            start = _frame_bound(em, spec.args.get("start"), spec.args.get("start_side"), kind)
            if spec.args.get("end") is None:
                parts.append(f"{kind} {start}")
            else:
                end = _frame_bound(em, spec.args.get("end"), spec.args.get("end_side"), kind)
                parts.append(f"{kind} BETWEEN {start} AND {end}")
    finally:
        em.clause, em.allow_aggregates = saved
    return f"{call} OVER ({' '.join(parts)})"


def emit_scalar_subquery(em: _Emitter, node: exp.Subquery) -> str:
    """``(SELECT one expression FROM T ...)`` used as a value: NULL for no row, the value for
    one, SQL Server's "Subquery returned more than 1 value" error for more."""
    inner = em.subquery(node, single=True, alias="v")
    return f'(SELECT caspio_scalar(COUNT(*), MAX("v")) FROM ({inner} LIMIT 2))'


class ScalarSubqueryError(Exception):
    """Raised inside SQLite by ``caspio_scalar``; sqlite3 reports it as a generic error."""


def caspio_scalar(rows: int, value: Any) -> Any:
    """SQLite function: a scalar subquery's value, or an error when it found two rows."""
    if rows > 1:
        raise ScalarSubqueryError(SCALAR_TOO_MANY)
    return value


def sqlite_message(exc: Exception) -> str:
    """The SQL Server message for a SQLite error (a raising ``caspio_scalar`` surfaces only as
    "user-defined function raised exception")."""
    text = str(exc)
    if "user-defined function raised exception" in text:
        return SCALAR_TOO_MANY
    return text
