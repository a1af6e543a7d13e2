"""The typed page decoder must give exactly the table the general dict path gives, or decline.

The fast path is only allowed to be faster: for any body, ``PageDecoder.decode`` answers either
``None`` (the caller then takes the dict path) or a table equal, value for value and type for
type, to ``page_to_arrow(orjson.loads(body)["Result"])``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.caspio.arrow import page_to_arrow
from sources.caspio.page_decoder import PageDecoder
from sources.caspio.schema import ObjectSchema, build_schema
from tests.zone_oracle import expected_utc

from .conftest import record_calls, reset_log
from .test_pipeline import make_pipeline, query, run
from .test_schema import FIELDS

SCHEMA = build_schema("All", "tables", FIELDS)


def dict_path(body: bytes, schema: ObjectSchema) -> pa.Table:
    return page_to_arrow(orjson.loads(body)["Result"], schema)


def assert_same(body: bytes, schema: ObjectSchema) -> pa.Table | None:
    fast = PageDecoder(schema).decode(body)
    if fast is not None:
        slow = dict_path(body, schema)
        assert fast.schema.equals(slow.schema)
        assert fast.to_pylist() == slow.to_pylist()
    return fast


def test_emulator_pages_decode_fast_and_identical(
    caspio_emulator_factory: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    """Generated rows cover every field type, nulls, unicode, quotes and long texts."""
    emu = caspio_emulator_factory(dataset=None, generate={"Wide": 2500})
    client = make_client(emu)
    schema = build_schema("Wide", "tables", client.get_fields("tables", "Wide"))
    kinds = {spec.value_type for spec in schema.fields}
    assert kinds >= {"text", "int", "float", "decimal", "bool", "naive_dt", "zoned_dt", "json"}
    for after in (0, 1000, 2000):
        body = client.get_records_body(
            "tables", "Wide", {"q.where": f"PK_ID > {after}", "q.pageSize": 1000}
        ).data
        assert assert_same(body, schema) is not None, "an ordinary page must take the fast path"


def test_view_pages_decode_with_text_keys(
    caspio_emulator: Any, make_client: Callable[..., Any]
) -> None:
    client = make_client(caspio_emulator)
    view = client.list_views()[0]
    schema = build_schema(view, "views", client.get_fields("views", view))
    body = client.get_records_body("views", view, {"q.pageSize": 1000}).data
    table = assert_same(body, schema)
    assert table is not None and table.num_rows > 0
    assert pa.types.is_string(table.schema.field("PK_ID").type)


@pytest.mark.parametrize(
    "row",
    [
        {"PK_ID": 2, "S": 42},  # a number in a text field
        {"PK_ID": 2, "I": 4.5},  # a fraction in an integer field
        {"PK_ID": 2, "Y": "Yes"},  # a string in a Yes/No field
        {"PK_ID": 2, "N": "1.5"},  # a string in a number field
    ],
)
def test_odd_values_decline_and_the_dict_path_coerces(row: dict[str, Any]) -> None:
    body = orjson.dumps({"Result": [{"PK_ID": 1, "S": "a"}, row]})
    assert PageDecoder(SCHEMA).decode(body) is None
    assert dict_path(body, SCHEMA).num_rows == 2


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"Result":[{"PK_ID":1,"S":"a"},{"PK_ID":2',
        b"<html>busy</html>",
        b"[]",
        b'{"Result":null}',
        b'{"Result":[null]}',
        b'{"Result":[{"PK_ID":1}]}{"Result":[{"PK_ID":2}]}',
    ],
)
def test_broken_bodies_decline(body: bytes) -> None:
    assert PageDecoder(SCHEMA).decode(body) is None


@pytest.mark.parametrize(
    "body",
    [
        # pretty-printed: the parser takes a page as one block, newlines and all
        orjson.dumps(
            {"Result": [{"PK_ID": 1, "S": "a", "LS": {"1": "x"}}]}, option=orjson.OPT_INDENT_2
        ),
        # keys a records answer does not usually carry are ignored, as by the dict path
        b'{"Result":[{"PK_ID":1,"S":"a","Unknown":[1,{"x":2}]}],"PageInfo":{"n":1}}',
        # no Result rows at all
        b'{"Result":[]}',
    ],
)
def test_unusual_but_valid_bodies_decode_identically(body: bytes) -> None:
    assert assert_same(body, SCHEMA) is not None


def test_a_key_given_twice_is_declined_or_read_as_the_dict_path_reads_it() -> None:
    body = b'{"Result":[{"PK_ID":1,"S":"first","S":"second","LS":{"1":"a"},"LS":{"2":"b"}}]}'
    assert_same(body, SCHEMA)  # orjson keeps the last value; the decoder must agree or decline


def test_odd_timestamps_use_the_same_per_value_fallback() -> None:
    """Values of the right JSON type but odd shape go through the same converters."""
    body = orjson.dumps(
        {
            "Result": [
                {"PK_ID": 1, "D": "2024-05-15T13:45:00Z", "TS": "2024-03-10T01:59:59+02:00"},
                {"PK_ID": 2, "D": "2024-05-15T13:45:00.123", "TS": "", "LS": None, "LN": []},
            ]
        }
    )
    assert assert_same(body, SCHEMA) is not None


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)

_WIRE: dict[str, st.SearchStrategy[Any]] = {
    "text": st.text(max_size=12),
    "int": st.integers(-(2**53), 2**53),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "decimal": st.integers(-(10**12), 10**12).map(lambda n: n / 10_000),
    "bool": st.booleans(),
    "naive_dt": st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0).isoformat()
    ),
    # 2024 only: the hand-written zone table knows that year's gaps and folds
    "zoned_dt": st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2024, 12, 31)).map(
        lambda d: d.replace(microsecond=0).isoformat()
    ),
    "json": st.dictionaries(
        st.integers(1, 99).map(str), st.text(max_size=5) | st.integers(-99, 99), max_size=3
    ),
}
_typed_row = st.fixed_dictionaries(
    {"PK_ID": st.integers(1, 10**9)},
    optional={
        spec.name: st.none() | _WIRE[spec.value_type]
        for spec in SCHEMA.fields
        if spec.name != "PK_ID"
    },
)
_odd_row = st.fixed_dictionaries(
    {"PK_ID": st.integers(1, 10**9)},
    optional={spec.name: _json_values for spec in SCHEMA.fields if spec.name != "PK_ID"},
)
_TS_ZONE = str(next(f["TimeZone"] for f in FIELDS if f["Name"] == "TS"))


def expected_value(kind: str, wire: Any) -> Any:
    """What a well-typed wire value must load as, computed here (not by the connector)."""
    if wire is None:
        return None
    if kind == "float":
        return float(wire)
    if kind == "decimal":
        return decimal.Decimal(str(wire)).quantize(decimal.Decimal("0.0001"))
    if kind == "naive_dt":
        return dt.datetime.fromisoformat(wire)
    if kind == "zoned_dt":
        return expected_utc(dt.datetime.fromisoformat(wire), _TS_ZONE)
    if kind == "json":
        return json.dumps(wire, ensure_ascii=False, separators=(",", ":"))
    return wire


MIN_FAST_SHARE = 0.25
"""At least this share of the mixed pages must take the fast path: a decoder that declined
everything would pass "declined or identical" without ever running."""


def test_any_page_is_declined_or_identical() -> None:
    """Mixed pages (well-typed rows, odd values, missing keys): the fast path declines or
    gives the dict path's table; and it must actually run on a good share of them."""
    seen = {"pages": 0, "fast": 0}

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(
            st.one_of(_typed_row, _typed_row, _odd_row),
            max_size=5,
        )
    )
    def check(rows: list[dict[str, Any]]) -> None:
        body = orjson.dumps({"Result": rows})
        seen["pages"] += 1
        try:
            dict_path(body, SCHEMA)
        except Exception:
            # values the dict path cannot load either (a CURRENCY of 1e24): the fast path
            # declines them, so the reader reports them with the object named
            assert PageDecoder(SCHEMA).decode(body) is None
            return
        if assert_same(body, SCHEMA) is not None:
            seen["fast"] += 1

    check()
    assert seen["fast"] >= MIN_FAST_SHARE * seen["pages"], seen


@settings(max_examples=100, deadline=None)
@given(st.lists(_typed_row, max_size=6))
def test_well_typed_pages_always_take_the_fast_path_and_match_the_oracle(
    rows: list[dict[str, Any]],
) -> None:
    """Rows of the right JSON types are what Caspio sends: the fast path must accept every such
    page, and its values must be what the test itself computes for each wire value."""
    table = PageDecoder(SCHEMA).decode(orjson.dumps({"Result": rows}))
    assert table is not None, "a well-typed page was declined"
    assert table.schema.equals(SCHEMA.arrow_schema)
    for row, got in zip(rows, table.to_pylist(), strict=True):
        for spec in SCHEMA.fields:
            want = expected_value(spec.value_type, row.get(spec.name))
            have = got[spec.name]
            assert type(have) is type(want) and have == want, (spec.name, row.get(spec.name), have)


def test_the_fast_path_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hit counter is a real check: a decoder that declines every page fails it."""
    monkeypatch.setattr(PageDecoder, "decode", lambda self, body: None)
    with pytest.raises(AssertionError, match="fast"):
        test_any_page_is_declined_or_identical()


def test_a_sync_with_declined_pages_loads_every_row_once(
    caspio_emulator_factory: Callable[..., Any],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A page the fast path declines costs no extra call and loses or doubles no row."""

    declined: list[bytes] = []
    fast_decode = PageDecoder.decode

    def decline_some(self: PageDecoder, body: bytes) -> pa.Table | None:
        if b'"PK_ID":2001,' in body or b'"PK_ID":3001,' in body:
            declined.append(body)
            return None
        return fast_decode(self, body)

    monkeypatch.setattr(PageDecoder, "decode", decline_some)
    emu = caspio_emulator_factory(dataset=None, generate={"Wide": 3500})
    client = make_client(emu)
    reset_log(emu)
    run(make_pipeline(tmp_path), emu, client, tables=["Wide"])
    assert len(declined) == 2
    assert len(record_calls(emu)) == 4
    assert query(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT pk_id) FROM caspio.wide") == [
        (3500, 3500)
    ]


def test_a_first_page_decodes_with_its_count() -> None:
    rows = [{"PK_ID": 1, "Name": "a"}, {"PK_ID": 2, "Name": None}]
    schema = build_schema(
        "T", "tables", [{"Name": "PK_ID", "Type": "AUTONUMBER"}, {"Name": "Name", "Type": "STRING"}]
    )
    body = orjson.dumps({"Result": rows, "Pagination": {"TotalCount": 2500, "PageCount": 3}})
    counted = PageDecoder(schema).decode_counted(body)
    assert counted is not None
    assert counted.total_count == 2500
    assert counted.table.to_pylist() == dict_path(body, schema).to_pylist()


@pytest.mark.parametrize(
    "body",
    [
        b'{"Pagination": {"TotalCount": 1}}',  # no Result
        b'{"Result": null}',
        b'{"Result": [null], "Pagination": {"TotalCount": 1}}',
        b'{"Result": [{"PK_ID": 1}], "Pagination": {"TotalCount": 1}',  # cut short
    ],
)
def test_odd_first_pages_decline(body: bytes) -> None:
    assert PageDecoder(SCHEMA).decode_counted(body) is None


def test_a_missing_or_odd_total_count_is_unknown_not_wrong() -> None:
    schema = build_schema("T", "tables", [{"Name": "PK_ID", "Type": "AUTONUMBER"}])
    for pagination in (None, {}, {"TotalCount": "12"}, {"TotalCount": True}):
        body = orjson.dumps({"Result": [{"PK_ID": 1}], "Pagination": pagination})
        counted = PageDecoder(schema).decode_counted(body)
        assert counted is not None and counted.total_count is None


def test_timestamp_scalars_convert_without_pandas_as_pyarrow_would() -> None:
    import pyarrow.compute as pc

    from sources.caspio.arrow import timestamp_value

    micros = [0, 1, 1_700_000_000_123_456, -86_400_000_001]
    for unit, scale in (("s", 1_000_000), ("ms", 1_000), ("us", 1), ("ns", 1)):
        for tz in (None, "UTC"):
            values = [m // scale for m in micros] if unit != "ns" else [m * 1000 for m in micros]
            column = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz=tz))
            for scalar in column:
                assert timestamp_value(scalar) == scalar.as_py()
            assert timestamp_value(pc.max(column)) == max(column.to_pylist())
    assert timestamp_value(pa.scalar(None, pa.timestamp("us", tz="UTC"))) is None


@pytest.mark.parametrize(
    "tags",
    [
        b'{"1":"Red","3":"Blue"}',  # the compact form: the raw text is kept
        b'{"1":"caf\\u00e9"}',  # an escape orjson would not write
        b'{ "1" : "Light Blue" }',  # whitespace between tokens
        b'{"1":"a","1":"b"}',  # a key given twice
        b'{"1":1.50,"2":1e2}',  # numbers orjson writes differently
    ],
)
def test_list_text_is_the_dict_paths_text_however_the_wire_writes_it(tags: bytes) -> None:
    schema = build_schema(
        "T",
        "tables",
        [{"Name": "PK_ID", "Type": "AUTONUMBER"}, {"Name": "Tags", "Type": "LIST-STRING"}],
    )
    body = b'{"Result":[{"PK_ID":1,"Tags":' + tags + b'},{"PK_ID":2,"Tags":null},{"PK_ID":3}]}'
    decoded = assert_same(body, schema)
    assert decoded is not None
    assert decoded.column("Tags").to_pylist()[0] == orjson.dumps(orjson.loads(tags)).decode()


_TAGS_SCHEMA = build_schema(
    "T",
    "tables",
    [{"Name": "PK_ID", "Type": "AUTONUMBER"}, {"Name": "Tags", "Type": "LIST-STRING"}],
)
_TAG_TEXTS = [
    b'{"1":"Red"}',
    b'{ "1":"Red"}',  # the same value, written otherwise
    b'{"1":"Red","3":"Blue"}',
    b'{"1":"caf\\u00e9"}',
    b'{"1":"caf\xc3\xa9"}',
    b'{"2":1.50}',
    b'{"2":1.5}',
    b"null",
]


def _tags_body(tags: list[bytes]) -> bytes:
    """A page of rows PK_ID 0, 1, ... whose Tags are these wire texts."""
    rows = b",".join(b'{"PK_ID":%d,"Tags":%s}' % (i, t) for i, t in enumerate(tags))
    return b'{"Result":[' + rows + b"]}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_TAG_TEXTS), min_size=1, max_size=4), max_size=4))
def test_a_decoder_that_remembers_list_texts_still_writes_the_dict_paths_text(
    pages: list[list[bytes]],
) -> None:
    """One decoder reads every page of an object, and remembers each LIST value's text: a
    value it saw in one form must not lend that form to another page's other spelling."""
    decoder = PageDecoder(_TAGS_SCHEMA)
    for tags in pages:
        body = _tags_body(tags)
        table = decoder.decode(body)
        assert table is not None
        assert table.to_pylist() == dict_path(body, _TAGS_SCHEMA).to_pylist()


def test_past_its_memory_a_decoder_still_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sources.caspio.page_decoder.LIST_TEXTS_REMEMBERED", 2)
    decoder = PageDecoder(_TAGS_SCHEMA)
    for page in range(3):
        tags = [b'{"1":"v%d"}' % (page * 10 + i) for i in range(5)] + [b'{ "1":"x"}']
        body = _tags_body(tags)
        assert decoder.decode(body).to_pylist() == dict_path(body, _TAGS_SCHEMA).to_pylist()  # type: ignore[union-attr]
    assert len(decoder._list_texts._known) == 2


def test_a_decoder_remembers_only_short_list_texts() -> None:
    decoder = PageDecoder(_TAGS_SCHEMA)
    body = _tags_body([b'{"1":"%s"}' % (b"x" * 300), b'{"1":"y"}'])
    assert decoder.decode(body).to_pylist() == dict_path(body, _TAGS_SCHEMA).to_pylist()  # type: ignore[union-attr]
    assert list(decoder._list_texts._known) == [b'{"1":"y"}']
