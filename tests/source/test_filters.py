"""q.where building: identifiers validated, literals quoted; hostile strings cannot escape."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sources.caspio import CaspioConfigError
from sources.caspio.filters import (
    and_,
    check_fragment,
    datetime_literal,
    identifier,
    int_literal,
    string_literal,
)
from sources.caspio.incremental import Cursor, cursor_filter
from sources.caspio.options import validate_table_options


def parse_string_literal(text: str) -> tuple[str, str]:
    """Reads one T-SQL string literal from the start of ``text``: (value, rest)."""
    assert text[0] == "'"
    out, i = [], 1
    while True:
        c = text[i]
        if c == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), text[i + 1 :]
        out.append(c)
        i += 1


@given(st.text(alphabet=st.characters(min_codepoint=32), max_size=200))
@settings(max_examples=300, deadline=None)
def test_string_literal_round_trips_and_cannot_escape(value: str) -> None:
    clause = f"PK_ID > {string_literal(value)} AND X = 1"
    parsed, rest = parse_string_literal(clause[len("PK_ID > ") :])
    assert parsed == value
    assert rest == " AND X = 1"


@given(st.text(max_size=60))
def test_identifier_accepts_only_caspio_names(name: str) -> None:
    try:
        assert identifier(name) == name
    except CaspioConfigError:
        return
    assert name[0].isascii() and name[0].isalpha()
    assert all(c.isascii() and (c.isalnum() or c == "_") for c in name)


# T-SQL's quoted tokens, each closed by its own character, which is doubled to escape it:
# 'string', "identifier", [identifier]. Inside them a ( ) ; or -- is not SQL syntax. The
# quantifiers are possessive, as T-SQL's lexer is greedy: "[]]" is an open identifier holding
# "]", not "[]" and a stray "]".
_QUOTED_TOKEN = re.compile(r"'(?:[^']|'')*+'|\"(?:[^\"]|\"\")*+\"|\[(?:[^\]]|\]\])*+\]")


def stays_inside_parentheses(fragment: str) -> bool:
    """An oracle written apart from ``check_fragment``: with the quoted tokens cut out, no quote
    is left open, parentheses balance and there is no statement separator or comment."""
    rest = _QUOTED_TOKEN.sub(" ", fragment)
    depth = 0
    for c in rest:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0 and not any(bad in rest for bad in ("'", '"', "[", ";", "--", "/*"))


@given(st.text(max_size=80) | st.text(alphabet="()'\"[];-/*ab ", max_size=30))
@settings(max_examples=500)
@example('"("')
@example("[)]")
@example("'a''(' = x")
@example('"a""(" = 1')
@example("[]]")
def test_user_fragment_cannot_break_out(fragment: str) -> None:
    """A fragment is accepted exactly when wrapping it in parentheses keeps the connector's own
    condition intact (hypothesis once drew ``"("``: an identifier, not a parenthesis)."""
    try:
        check_fragment(fragment)
        accepted = True
    except CaspioConfigError:
        accepted = False
    assert accepted == stays_inside_parentheses(fragment)


@pytest.mark.parametrize(
    "bad", ["1=1) OR (1=1", "x = 'a", "a = 1; DROP TABLE t", "a = 1 -- c", "a /* c */", ")("]
)
def test_hostile_fragments_refused(bad: str) -> None:
    with pytest.raises(CaspioConfigError):
        check_fragment(bad)


def test_literals() -> None:
    assert int_literal(5) == "5"
    with pytest.raises(TypeError):
        int_literal("5 OR 1=1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        int_literal(True)
    assert datetime_literal(dt.datetime(2024, 1, 31, 10, 0, 0, 5)) == "'2024-01-31T10:00:00'"
    with pytest.raises(ValueError):
        string_literal("a\x00b")
    assert and_(None, "a = 1") == "a = 1"
    assert and_("a = 1", "b = 2") == "(a = 1) AND (b = 2)"


@pytest.mark.parametrize("name", ["Updated; --", "x') OR ('1'='1", "1abc", "a b", "Ü"])
def test_hostile_field_names_in_options_are_refused(name: str) -> None:
    with pytest.raises(CaspioConfigError):
        validate_table_options({"T": {"cursor_field": name}})
    with pytest.raises(CaspioConfigError):
        validate_table_options({"T": {"fields": [name]}})


def test_cursor_filter_forms() -> None:
    from sources.caspio.timezones import zone

    ts = Cursor("Updated", "TIMESTAMP", zone("Pacific Standard Time"))
    assert cursor_filter(ts, None) is None
    assert cursor_filter(ts, "2024-07-01T19:00:00+00:00") == "Updated > '2024-07-01T12:00:00'"
    assert cursor_filter(ts, "2024-07-01T19:00:00+00:00", lag_seconds=600) == (
        "Updated >= '2024-07-01T11:50:00'"
    )
    naive = Cursor("Due", "DATE/TIME", None)
    assert cursor_filter(naive, "2024-07-01T19:00:00") == "Due >= '2024-07-01T19:00:00'"


def test_unknown_option_is_refused() -> None:
    with pytest.raises(CaspioConfigError, match="valid options"):
        validate_table_options({"T": {"cursor": "Updated"}})
