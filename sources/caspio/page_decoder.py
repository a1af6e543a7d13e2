"""A records page body -> an Arrow table, parsed by Arrow's C++ JSON reader outside the GIL.

Why: decoding pages was most of a bulk sync's CPU, and all of it ran under the GIL, so the
threads that fetch pages concurrently took turns on one core. ``pyarrow.json`` parses the body
straight into typed columns in C++ and releases the GIL while it does, so pages decode in
parallel with each other and with the HTTP reads. Only LIST fields (any JSON, kept as JSON
text) still pass through Python: ``msgspec`` cuts their raw values out of the body, which are
kept as they are when they already are the dict path's text (learnt once per distinct value),
and written by the dict path's own converter when not. The first page of a read, which also
carries the row count, is decoded too (``decode_counted``).

The reader is strict: a value that is not of its field's JSON type (a number in a text field,
a fraction in an integer field, a string in a number field) fails the parse instead of being
coerced. The decoder then answers ``None`` and the caller parses the page the general way
(``orjson`` + ``arrow.page_to_arrow``), which tolerates odd values per column and turns a
broken body into a retry. Every column a page does decode goes through the same final step as
the dict path (``arrow.FINISHERS``), so both ways give the same table for the same body
(tested value for value, and by a property test over arbitrary pages).
"""

import itertools
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .arrow import (
    CONVERTERS,
    FINISHERS,
    WIRE_TYPES,
    ArrowColumn,
    read_json_document,
    text_array,
)
from .paging import total_count
from .schema import FieldSpec, ObjectSchema

_PARSE_POOL = pa.system_memory_pool()
"""The parser's memory comes from malloc, not Arrow's default mimalloc pool: pages are parsed in
several fetch threads at once and freed in another, which mimalloc keeps on per-thread lists
for a while, raising the peak (measured in docs/benchmarks-analysis.md)."""


@dataclass(frozen=True, slots=True)
class CountedTable:
    """The first page of a read (the one that asks for ``q.getPaginationInfo``), decoded.

    Besides the table it keeps the row count Caspio reported."""

    table: pa.Table
    total_count: int | None


class _CountedEnvelope(msgspec.Struct, gc=False):
    Result: list[msgspec.Raw]
    Pagination: dict[str, Any] | None = None


_COUNTED_ENVELOPE = msgspec.json.Decoder(_CountedEnvelope)


LIST_TEXTS_REMEMBERED = 10_000
"""How many distinct LIST values a decoder remembers the text of. Multi-select values repeat
(a few options, few combinations), so after the first pages nearly every value is known; past
this many the decoder learns each page's new values again, as it did before it remembered."""
LIST_TEXT_REMEMBERED_BYTES = 200
"""Only texts this short are remembered (a long combination rarely repeats), so what a decoder
remembers stays within a few MB whatever the field holds."""

_REWRITTEN = b""
"""A learnt value whose compact form differs from its wire text (never a value's text: JSON
text is never empty)."""


class _ListTexts:
    """LIST values as JSON text, exactly as the dict path writes them (orjson's compact form).

    Re-writing each value costs about 1.2 µs (orjson encodes every fresh string to UTF-8), and
    parsing a page's values to prove their form was still most of its LIST time. So a decoder
    learns each distinct value's text once: its wire text (when orjson writes the value the same
    way), null, or ``_REWRITTEN``, and then the page's column takes the dict path's converter.
    Fetch threads share a decoder: entries are only added, each by one dict assignment."""

    def __init__(self) -> None:
        self._known: dict[bytes, bytes | None] = {}

    def column(self, raws: list[Any], spec: FieldSpec) -> pa.Array:
        # a missing key (None) reads as null, as a null on the wire does
        texts = [b"null" if raw is None else bytes(raw) for raw in raws]
        distinct = set(texts)
        unknown = [text for text in distinct if text not in self._known]
        learnt = self._learn(unknown) if unknown else {}
        found = {text: learnt[text] if text in learnt else self._known[text] for text in distinct}
        if _REWRITTEN in found.values():
            return CONVERTERS["json"](orjson.loads(b"[" + b",".join(texts) + b"]"), spec)
        return text_array(list(map(found.__getitem__, texts)))

    def _learn(self, texts: list[bytes]) -> dict[bytes, bytes | None]:
        """What each new text stands for; a text that is not JSON raises, and the page takes the
        dict path. One re-dump of them all proves the usual case: the same bytes parse to the
        same values at the same boundaries, so texts equal to their canonical form together
        are each canonical."""
        joined = b"[" + b",".join(texts) + b"]"
        values = orjson.loads(joined)
        if orjson.dumps(values) == joined:
            learnt = {t: None if v is None else t for t, v in zip(texts, values, strict=True)}
        else:
            learnt = {
                t: None if v is None else (t if orjson.dumps(v) == t else _REWRITTEN)
                for t, v in zip(texts, values, strict=True)
            }
        room = LIST_TEXTS_REMEMBERED - len(self._known)
        if room > 0:
            short = ((t, v) for t, v in learnt.items() if len(t) <= LIST_TEXT_REMEMBERED_BYTES)
            self._known.update(itertools.islice(short, room))
        return learnt


def _finish(wire: pa.Array, spec: FieldSpec) -> ArrowColumn:
    """A column of the field's JSON type -> its load type. A value of the right JSON type but
    an odd shape (a date with an offset, an empty string in a date field) takes the dict path's
    per-value conversion for this column only."""
    try:
        return FINISHERS[spec.value_type](wire, spec)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return CONVERTERS[spec.value_type](wire.to_pylist(), spec)


class PageDecoder:
    """Decodes record pages of one object's schema (build once per object and run)."""

    def __init__(self, schema: ObjectSchema) -> None:
        self.schema = schema
        self._arrow_schema = schema.arrow_schema
        self._typed = [spec for spec in schema.fields if spec.value_type != "json"]
        self._lists = [spec for spec in schema.fields if spec.value_type == "json"]
        row = pa.struct([pa.field(spec.name, WIRE_TYPES[spec.value_type]) for spec in self._typed])
        self._parse_options = pa_json.ParseOptions(
            explicit_schema=pa.schema([pa.field("Result", pa.list_(row))]),
            unexpected_field_behavior="ignore",
        )
        self._list_decoder: msgspec.json.Decoder[Any] | None = None
        self._list_texts = _ListTexts()
        # one getter per LIST field, built once: not a getattr with a name built per row
        self._list_getters = [attrgetter(f"f{i}") for i in range(len(self._lists))]
        if self._lists:
            # attribute names are positional (f0, f1, ...): Caspio names need not be identifiers
            list_row = msgspec.defstruct(
                "CaspioListValues",
                # Raw cannot sit in a union with None: null arrives as Raw(b"null"), a missing
                # key as the default None
                [(f"f{i}", msgspec.Raw, None) for i in range(len(self._lists))],
                rename={f"f{i}": spec.name for i, spec in enumerate(self._lists)},
                gc=False,
            )
            page = msgspec.defstruct("CaspioListPage", [("Result", list[list_row])], gc=False)  # type: ignore[valid-type]
            self._list_decoder = msgspec.json.Decoder(page)

    def decode(self, body: bytes) -> pa.Table | None:
        """The page as a table, or ``None`` when it needs the general (dict) path."""
        try:
            parsed = self._typed_columns(body)
            if parsed is None:
                return None
            columns, row_count = parsed
            if self._list_decoder is not None:
                columns.update(self._list_columns(body, row_count))
        except (ValueError, TypeError, ArithmeticError, pa.ArrowException, msgspec.MsgspecError):
            return None
        arrays = [columns[spec.name] for spec in self.schema.fields]
        return pa.Table.from_arrays(arrays, schema=self._arrow_schema)

    def decode_counted(self, body: bytes) -> CountedTable | None:
        """The first page of a read as a ``CountedTable``, or ``None`` for the dict path.

        Why the first page is decoded too: on the dict path a one-page table went through
        Python value by value, and so did the first page of every bigger one."""
        try:
            envelope = _COUNTED_ENVELOPE.decode(body)
            table = self.decode(body)
            if table is None or table.num_rows != len(envelope.Result):
                return None
        except (ValueError, TypeError, msgspec.MsgspecError):
            return None
        return CountedTable(table, total_count(envelope.Pagination))

    def _typed_columns(self, body: bytes) -> tuple[dict[str, ArrowColumn], int] | None:
        parsed = read_json_document(body, self._parse_options, _PARSE_POOL)
        pages = parsed.column("Result")
        if parsed.num_rows != 1 or pages.num_chunks != 1 or pages.null_count:
            return None  # not one object with a "Result" list
        # one chunk, flattened as an array: combine_chunks() of no chunks imports pandas
        rows = pc.list_flatten(pages.chunk(0))
        if rows.null_count:
            return None  # a null record: the dict path reports it
        columns = {
            spec.name: _finish(column, spec)
            for spec, column in zip(self._typed, rows.flatten(), strict=True)
        }
        return columns, len(rows)

    def _list_columns(self, body: bytes, row_count: int) -> dict[str, pa.Array]:
        assert self._list_decoder is not None
        rows = self._list_decoder.decode(body).Result
        if len(rows) != row_count:
            raise ValueError("the two parses disagree on the row count")
        return {
            spec.name: self._list_texts.column(list(map(getter, rows)), spec)
            for getter, spec in zip(self._list_getters, self._lists, strict=True)
        }


__all__ = ["CountedTable", "PageDecoder"]
