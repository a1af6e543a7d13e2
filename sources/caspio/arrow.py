"""A page of Caspio records -> a ``pyarrow.Table`` with the object's prebuilt schema.

Why column-wise with a fixed schema: dlt's row-by-row JSON normalizer infers types value by
value (many times slower and larger on Caspio-shaped rows); here each column is one
vectorised Arrow conversion (ISO strings -> timestamps, floats -> decimal(19,4), zone ->
UTC), and dlt takes the Arrow table on its fast path, writing Parquet directly. Odd values
(a number in a text field, a date with an offset) fall back to a per-value conversion for that
column only, so one strange row never fails a page.
"""

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeAlias

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .schema import FieldSpec, ObjectSchema
from .timezones import UTC, local_to_utc

Row = Mapping[str, Any]
ArrowColumn: TypeAlias = pa.Array | pa.ChunkedArray


def _text(values: list[Any], spec: FieldSpec) -> pa.Array:
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return text_array(
            [v if v is None or isinstance(v, str) else orjson.dumps(v) for v in values]
        )


def _int(values: list[Any], spec: FieldSpec) -> pa.Array:
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return wire_array([None if v is None or v == "" else int(v) for v in values], pa.int64())


def _float(values: list[Any], spec: FieldSpec) -> pa.Array:
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        floats = [None if v is None or v == "" else float(v) for v in values]
        return wire_array(floats, pa.float64())


def _finish_decimal(wire: ArrowColumn, spec: FieldSpec) -> ArrowColumn:
    # float64 -> decimal128(19,4) rounds to 4 places (JSON numbers arrive as floats)
    return wire.cast(spec.arrow_type)


def _decimal(values: list[Any], spec: FieldSpec) -> pa.Array:
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        quantum = Decimal(1).scaleb(-spec.arrow_type.scale)
        # quantized to the type's scale, so the text casts exactly
        texts = [
            None if v is None or v == "" else str(Decimal(str(v)).quantize(quantum)) for v in values
        ]
        return text_array(texts).cast(spec.arrow_type)


def _bool(values: list[Any], spec: FieldSpec) -> pa.Array:
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return wire_array([None if v is None or v == "" else bool(v) for v in values], pa.bool_())


def parse_wire_datetime(value: str) -> dt.datetime:
    """``2024-05-15T13:45:00`` (possibly with fraction or offset) -> datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _finish_naive_dt(wire: ArrowColumn, spec: FieldSpec) -> ArrowColumn:
    return wire.cast(pa.timestamp("us"))


def _naive_dt(values: list[Any], spec: FieldSpec) -> pa.Array:
    return _datetimes(values, spec, lambda d: d.astimezone(UTC).replace(tzinfo=None))


def _finish_zoned_dt(wire: ArrowColumn, spec: FieldSpec) -> ArrowColumn:
    assert spec.tz is not None
    naive = wire.cast(pa.timestamp("us"))
    return pc.assume_timezone(
        naive, timezone=spec.tz.key, ambiguous="earliest", nonexistent="latest"
    ).cast(spec.arrow_type)


def _zoned_dt(values: list[Any], spec: FieldSpec) -> pa.Array:
    tz = spec.tz
    assert tz is not None
    return _datetimes(values, spec, lambda d: d.astimezone(UTC), lambda d: local_to_utc(d, tz))


def _datetimes(
    values: list[Any],
    spec: FieldSpec,
    with_offset: Callable[[dt.datetime], dt.datetime],
    without_offset: Callable[[dt.datetime], dt.datetime] = lambda d: d,
) -> pa.Array:
    """Date/time values: Arrow's parser first; odd ones ('' as null, an offset Caspio never
    sends) value by value, each placed in the field's zone by the two functions."""
    try:
        return _from_wire(values, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        out: list[dt.datetime | None] = []
        for v in values:
            if v is None or v == "":
                out.append(None)
                continue
            d = parse_wire_datetime(str(v))
            out.append(with_offset(d) if d.tzinfo else without_offset(d))
        return timestamp_array(out, spec.arrow_type)


def _json(values: list[Any], spec: FieldSpec) -> pa.Array:
    return text_array([None if v is None else orjson.dumps(v) for v in values])


def text_array(values: Sequence[bytes | str | None]) -> pa.Array:
    """UTF-8 values (``None`` for null) as a string array, built by Arrow's string builder.

    Why this module never calls ``pa.array`` on Python values: pyarrow's first such call imports
    pandas, in whatever thread converts a page. dlt's extract loop
    reads ``sys.modules["pandas"].DataFrame`` for every item meanwhile, and a half-imported
    pandas has none: syncs of the demo account failed that way. Nothing in a sync needs pandas."""
    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()


_BLOCK_PADDING = 64
"""The JSON reader cuts its input into blocks of ``block_size`` bytes; a block larger than the
body keeps it in one block, parsed as one document (newlines inside it included)."""


def read_json_document(
    body: bytes, parse_options: pa_json.ParseOptions, memory_pool: pa.MemoryPool | None = None
) -> pa.Table:
    """One JSON document (a page body, or values wrapped by ``wire_array``) read by Arrow's
    JSON reader on the calling thread, as a table of one row.

    Why a ``BufferReader``: Arrow reads the body's own memory, where a ``BytesIO`` made it copy
    the body through a Python file object, under the GIL."""
    return pa_json.read_json(
        pa.BufferReader(body),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + _BLOCK_PADDING),
        parse_options=parse_options,
        memory_pool=memory_pool,
    )


def wire_array(values: Sequence[Any], wire_type: pa.DataType) -> pa.Array:
    """JSON-shaped values (as ``orjson.loads`` gives them) as an array of ``wire_type``, read
    by Arrow's JSON reader: no ``pa.array`` (see ``text_array``), and the page decoder's own
    reader, so a value converts here exactly when it converts there (``1.5`` is no int64,
    ``true`` no number, ``7`` no text). A value that does not convert raises ``ArrowInvalid``."""
    table = read_json_document(
        b'{"v":' + orjson.dumps(values) + b"}",
        pa_json.ParseOptions(explicit_schema=pa.schema([pa.field("v", pa.list_(wire_type))])),
    )
    listed = table.column("v").chunk(0)
    if len(listed) != 1 or listed.null_count:  # pragma: no cover - the body is built above
        raise pa.ArrowInvalid("values did not read back as one list")
    return listed.values


_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH_NAIVE.replace(tzinfo=UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def timestamp_array(values: Sequence[dt.datetime | None], type_: pa.TimestampType) -> pa.Array:
    """Datetimes (naive, or aware for a zoned ``type_``) as a ``timestamp[us]`` array, without
    ``pa.array`` (see ``text_array``)."""
    epoch = _EPOCH_UTC if type_.tz is not None else _EPOCH_NAIVE
    micros = [None if v is None else (v - epoch) // _MICROSECOND for v in values]
    return wire_array(micros, pa.int64()).cast(type_)


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def timestamp_value(scalar: pa.TimestampScalar) -> dt.datetime | None:
    """A timestamp scalar as a datetime (aware UTC if the type has a zone; ns truncated to us),
    the inverse of ``timestamp_array``. Why not ``scalar.as_py()``: for timestamps it imports
    pandas (see ``text_array``)."""
    if not scalar.is_valid:
        return None
    micros = scalar.value * 1_000_000 // _PER_SECOND[scalar.type.unit]
    value = _EPOCH_NAIVE + micros * _MICROSECOND
    return value.replace(tzinfo=UTC) if scalar.type.tz is not None else value


class _JsonTextHintFilter(logging.Filter):
    """Drops dlt's "arrow schema and dlt schema hints differ" warning for our JSON-text columns.

    LIST fields travel as JSON *text* in Arrow under a ``json`` dlt hint on purpose: an Arrow
    map loads into DuckDB but PostgreSQL rejects it, while JSON text loads everywhere. dlt
    warns about that difference on every page; a warning users learn to ignore hides real ones,
    so only the resources registered here (Caspio objects with LIST fields) are silenced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resources: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "when merging arrow schema with dlt schema" not in message:
            return True
        return not any(f"In resource: {name}," in message for name in self.resources)


_json_text_filter = _JsonTextHintFilter()
logging.getLogger("dlt").addFilter(_json_text_filter)


def expect_json_text_columns(resource_name: str) -> None:
    """Declare that ``resource_name`` yields LIST fields as JSON text (see the filter above)."""
    _json_text_filter.resources.add(resource_name)


def _as_is(wire: ArrowColumn, spec: FieldSpec) -> ArrowColumn:
    return wire


WIRE_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.float64(),
    "bool": pa.bool_(),
    "naive_dt": pa.string(),
    "zoned_dt": pa.string(),
}
"""How each kind's values arrive in JSON, as an Arrow type (LIST values have none: any JSON)."""

FINISHERS: dict[str, Callable[[ArrowColumn, FieldSpec], ArrowColumn]] = {
    "text": _as_is,
    "int": _as_is,
    "float": _as_is,
    "decimal": _finish_decimal,
    "bool": _as_is,
    "naive_dt": _finish_naive_dt,
    "zoned_dt": _finish_zoned_dt,
}
"""A column of ``WIRE_TYPES[kind]`` -> its load type. The converters' fast path
(``_from_wire``) runs the same step on the values they are given, so a column read as Arrow
straight from JSON (page_decoder) and one built from Python values load identically."""


def _from_wire(values: list[Any], spec: FieldSpec) -> ArrowColumn:
    """The converters' fast path: the values as their JSON type, then the kind's last step,
    the same two steps page_decoder takes on the columns Arrow's JSON reader builds."""
    return FINISHERS[spec.value_type](wire_array(values, WIRE_TYPES[spec.value_type]), spec)


CONVERTERS: dict[str, Callable[[list[Any], FieldSpec], pa.Array]] = {
    "text": _text,
    "int": _int,
    "float": _float,
    "decimal": _decimal,
    "bool": _bool,
    "naive_dt": _naive_dt,
    "zoned_dt": _zoned_dt,
    "json": _json,
}


def page_to_arrow(rows: Sequence[Row], schema: ObjectSchema) -> pa.Table:
    """Converts one page (any number of rows, zero included) to an Arrow table."""
    arrays = []
    for spec in schema.fields:
        name = spec.name
        values = [row.get(name) for row in rows]
        arrays.append(CONVERTERS[spec.value_type](values, spec))
    return pa.Table.from_arrays(arrays, schema=schema.arrow_schema)
