"""Property tests (hypothesis): nothing the connector writes into `q.where` or a path can change
what the filter means, whatever the value, identifier or user filter.

Two oracles: sqlglot's T-SQL parser (Caspio runs SQL Server) must read every literal back as one
literal holding exactly the value, and the emulator (real HTTP) must return exactly the rows a
Python predicate selects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlglot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from sources.caspio import CaspioConfigError, CaspioObjectNotFoundError
from sources.caspio.filters import (
    and_,
    check_fragment,
    datetime_literal,
    identifier,
    string_literal,
)
from sources.caspio.paging import KeysetReader

from .harness import ITEMS, make_client

HOSTILE = [
    "'",
    "''",
    "' OR 1=1 --",
    "'; DROP TABLE Items; --",
    "/* x */",
    "*/ OR 1=1 /*",
    "--",
    ";",
    "\\'",
    '"',
    "[",
    "]",
    "') OR ('1'='1",
    "Zoë 日本 — €",
    "%_[a-z]",
    "N'x'",
    "1; WAITFOR DELAY '0:0:5'",
]
# printable ASCII plus a few uncased non-ASCII characters (the emulator's text comparison is
# case-insensitive like SQL Server's default collation; uncased characters keep the Python
# predicate exact)
ALPHABET = st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(
    list("日本—€™\u00a0\t")
)
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(ALPHABET, max_size=30))
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
HTTP_PROPS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def parse(where: str) -> exp.Expression:
    return sqlglot.parse_one(where, read="tsql")


@pytest.mark.once
@pytest.mark.scenario("security", "hostile strings as q.where literals (sqlglot T-SQL oracle)")
@PROPS
@given(value=hostile_text)
def test_string_literal_parses_back_as_one_literal(value: str) -> None:
    try:
        literal = string_literal(value)
    except ValueError:
        assert any(ord(c) < 32 and c not in "\t\n\r" for c in value)
        return
    tree = parse(f"PK_ID > {literal} AND PK_ID <= 10")
    assert isinstance(tree, exp.And), repr(tree)
    left = tree.this
    assert isinstance(left, exp.GT) and isinstance(left.expression, exp.Literal)
    assert left.expression.is_string and left.expression.this == value
    assert tree.expression.sql(dialect="tsql") == "PK_ID <= 10"


@pytest.mark.once
@pytest.mark.scenario("security", "hostile cursor values / PK bounds (literal or refused)")
@PROPS
@given(
    moment=st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9999, 1, 1)),
    pk=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    junk=st.one_of(hostile_text, st.floats(), st.booleans(), st.none()),
)
def test_cursor_and_pk_literals(moment: dt.datetime, pk: int, junk: Any) -> None:
    tree = parse(f"Updated >= {datetime_literal(moment)}")
    assert isinstance(tree, exp.GTE) and tree.expression.is_string
    assert tree.expression.this == moment.replace(microsecond=0).isoformat(timespec="seconds")
    reader_params = KeysetReader(make_client_stub(), "tables", ITEMS)._params(pk, pk + 1, False)
    where = parse(str(reader_params["q.where"]))
    assert isinstance(where, exp.And)
    # a PK bound is never anything but an integer: every other type is refused
    from sources.caspio.filters import int_literal

    with pytest.raises((TypeError, ValueError)):
        int_literal(junk)


def make_client_stub() -> Any:
    """KeysetReader only reads `max_workers` from the client when building params."""

    class _Stub:
        max_workers = 1

    return _Stub()


@pytest.mark.once
@pytest.mark.scenario("security", "hostile identifiers (field names in config) are refused")
@PROPS
@given(name=st.one_of(hostile_text, st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)))
@example(name="GO")  # found by this test: the T-SQL batch separator parses as a command
def test_identifiers_are_validated(name: str) -> None:
    try:
        assert identifier(name) == name
    except CaspioConfigError:
        return
    try:
        tree = parse(f"{name} > 1")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return  # a reserved word: Caspio would reject the query, nothing changes meaning
    assert isinstance(tree, exp.GT) and isinstance(tree.this, exp.Column)
    assert tree.this.name == name


@pytest.mark.once
@pytest.mark.scenario("security", "user `where` fragments cannot escape their parentheses")
@PROPS
@example(fragment='"x\'" = 1) OR (1=1) OR ("\'" = 1')
@example(fragment="[a'] = 1) OR (1=1) OR ([b'] = 1")
@example(fragment="Qty > 1) OR (1=1")
@example(fragment="Qty > 1 --")
@given(
    fragment=st.lists(
        st.sampled_from(list("()'\"[]-;/*= 1aQ") + [" OR ", " AND ", "Qty", "1=1"]), max_size=16
    ).map("".join)
)
def test_where_fragment_stays_inside_its_parentheses(fragment: str) -> None:
    """`(PK_ID > 5) AND (<fragment>)`: if the fragment is accepted, the connector's own bound
    must remain a top-level conjunct, whatever the fragment says."""
    if not fragment.strip():
        return  # an empty `where` is dropped (no filter)
    try:
        check_fragment(fragment)
    except CaspioConfigError:
        return
    where = and_("PK_ID > 5", fragment)
    assert where is not None
    try:
        tree = parse(where)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return  # Caspio would reject it: no silent change of meaning
    assert isinstance(tree, exp.And), f"{fragment!r} escaped: {tree.sql(dialect='tsql')}"
    assert tree.this.sql(dialect="tsql") == "(PK_ID > 5)", tree.sql(dialect="tsql")


@pytest.mark.once
@pytest.mark.scenario(
    "security", "hostile strings as q.where values: emulator returns exactly the matching rows"
)
@HTTP_PROPS
@given(value=hostile_text)
def test_emulator_returns_exactly_the_rows_a_literal_selects(emulator: Any, value: str) -> None:
    try:
        literal = string_literal(value)
    except ValueError:
        return
    client = getattr(emulator, "_prop_client", None) or make_client(emulator)
    emulator._prop_client = client
    if len(value) <= 255:
        emulator.insert(ITEMS, {"Name": value, "Qty": 1})
    where = and_("PK_ID > 0", f"Name = {literal}")
    got = client.get_records(
        "tables", ITEMS, {"q.where": str(where), "q.pageSize": 1000, "q.pageNumber": 1}
    ).data["Result"]

    def norm(text: Any) -> Any:
        return text.rstrip(" ").lower() if isinstance(text, str) else text

    expected = {r["PK_ID"] for r in emulator.table_rows(ITEMS) if norm(r["Name"]) == norm(value)}
    assert {r["PK_ID"] for r in got} == expected


@pytest.mark.once
@pytest.mark.scenario("security", "hostile table names stay one URL path segment")
@HTTP_PROPS
@given(
    name=st.one_of(
        st.sampled_from(["../tables/Items", "Items/records", "Notes%2F..", "Items?x=1", "Items#"]),
        hostile_text.filter(lambda s: s.strip().lower() not in ("items", "notes", "")),
    )
)
def test_hostile_table_names_never_reach_another_object(emulator: Any, name: str) -> None:
    client = getattr(emulator, "_prop_client", None) or make_client(emulator)
    emulator._prop_client = client
    with pytest.raises(CaspioObjectNotFoundError):
        client.get_fields("tables", name)
