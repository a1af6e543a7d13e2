"""Caspio ``/fields`` metadata -> dlt column hints and the Arrow schema of a page.

The mapping (see the project's Caspio API facts for the wire format):

============================================  ==========================================
Caspio ``Type``                               dlt ``data_type`` (Arrow type)
============================================  ==========================================
STRING TEXT FILE GUID RANDOM ID               text (string)
PREFIXED AUTONUMBER ATTACHMENT
NUMBER                                        double (float64)
INTEGER AUTONUMBER                            bigint (int64)
CURRENCY                                      decimal(19,4) (decimal128(19,4))
YES/NO                                        bool
DATE/TIME                                     timestamp, ``timezone: False`` (naive; Caspio
                                              stores no zone, none is invented)
TIMESTAMP                                     timestamp in UTC (converted from the field's
                                              ``TimeZone``)
LIST-STRING LIST-NUMBER LIST-DATE/TIME        json (the ``{"item id": value}`` object as sent)
PASSWORD                                      left out (the API never returns it)
unknown types                                 text (forward compatible; value as JSON text)
============================================  ==========================================

``PK_ID`` (absent from /fields) is added first: bigint primary key for tables, text for views.
Label and description become the column description.
"""

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa
from dlt.common.schema import Schema
from dlt.common.schema.typing import TColumnSchema, TTableSchemaColumns

from . import settings as s
from .errors import CaspioConfigError
from .timezones import zone

logger = logging.getLogger(__name__)

TABLES = s.TABLES
VIEWS = s.VIEWS
ValueType = Literal["text", "int", "float", "decimal", "bool", "naive_dt", "zoned_dt", "json"]


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """How one Caspio field is loaded."""

    name: str
    caspio_type: str
    value_type: ValueType
    """How its values convert: text | int | float | decimal | bool | naive_dt | zoned_dt | json"""
    arrow_type: pa.DataType
    column: TColumnSchema
    tz: ZoneInfo | None = None
    on_update: bool = False


@dataclasses.dataclass(frozen=True)
class ObjectSchema:
    """The load schema of one table or view: ordered fields, Arrow schema, dlt columns."""

    name: str
    kind: s.ObjectKind
    fields: tuple[FieldSpec, ...]
    raw_fields: tuple[Mapping[str, Any], ...]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=f.name != s.PK_FIELD) for f in self.fields]
        )

    @property
    def columns(self) -> TTableSchemaColumns:
        return {f.name: f.column for f in self.fields}

    @property
    def field_names(self) -> frozenset[str]:
        """Names a record answer carries (PK_ID included, PASSWORD excluded)."""
        return frozenset(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec | None:
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    def raw_field(self, name: str) -> Mapping[str, Any] | None:
        lowered = name.lower()
        return next((f for f in self.raw_fields if str(f.get("Name")).lower() == lowered), None)


def _description(field: Mapping[str, Any]) -> str | None:
    parts = [str(p).strip() for p in (field.get("Label"), field.get("Description")) if p]
    parts = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return " - ".join(parts) or None


def field_spec(field: Mapping[str, Any]) -> FieldSpec | None:
    """The ``FieldSpec`` of one /fields entry; ``None`` for fields never returned (PASSWORD)."""
    name = str(field.get("Name") or "")
    ctype = str(field.get("Type") or "").upper()
    if not name:
        raise CaspioConfigError("Caspio returned a field without a Name in /fields")
    if ctype in s.SKIPPED_TYPES:
        return None
    col: TColumnSchema = {"name": name, "nullable": True}
    tz: ZoneInfo | None = None
    value_type: ValueType
    if ctype in s.TEXT_TYPES:
        value_type, atype = "text", pa.string()
        col["data_type"] = "text"
    elif ctype in s.INTEGER_TYPES:
        value_type, atype = "int", pa.int64()
        col["data_type"] = "bigint"
    elif ctype in s.FLOAT_TYPES:
        value_type, atype = "float", pa.float64()
        col["data_type"] = "double"
    elif ctype in s.DECIMAL_TYPES:
        value_type, atype = "decimal", pa.decimal128(s.CURRENCY_PRECISION, s.CURRENCY_SCALE)
        col["data_type"] = "decimal"
        col["precision"] = s.CURRENCY_PRECISION
        col["scale"] = s.CURRENCY_SCALE
    elif ctype in s.BOOL_TYPES:
        value_type, atype = "bool", pa.bool_()
        col["data_type"] = "bool"
    elif ctype in s.NAIVE_DATETIME_TYPES:
        value_type, atype = "naive_dt", pa.timestamp("us")
        col["data_type"] = "timestamp"
        col["timezone"] = False
    elif ctype in s.ZONED_DATETIME_TYPES:
        value_type, atype = "zoned_dt", pa.timestamp("us", tz="UTC")
        col["data_type"] = "timestamp"
        col["timezone"] = True
        tz = zone(field.get("TimeZone"))
    elif ctype in s.LIST_TYPES:
        value_type, atype = "json", pa.string()
        col["data_type"] = "json"
    else:
        logger.warning("Caspio field %s has unknown type %r: loading it as text", name, ctype)
        value_type, atype = "text", pa.string()
        col["data_type"] = "text"
    description = _description(field)
    if description:
        col["description"] = description
    return FieldSpec(
        name=name,
        caspio_type=ctype,
        value_type=value_type,
        arrow_type=atype,
        column=col,
        tz=tz,
        on_update=bool(field.get("OnUpdate")),
    )


def pk_spec(kind: s.ObjectKind) -> FieldSpec:
    if kind == VIEWS:
        col: TColumnSchema = {
            "name": s.PK_FIELD,
            "data_type": "text",
            "nullable": False,
            "primary_key": True,
            "description": "Comma-joined PK_IDs of the view's source rows",
        }
        return FieldSpec(s.PK_FIELD, "PK_ID", "text", pa.string(), col)
    col = {"name": s.PK_FIELD, "data_type": "bigint", "nullable": False, "primary_key": True}
    return FieldSpec(s.PK_FIELD, "PK_ID", "int", pa.int64(), col)


def build_schema(
    name: str,
    kind: s.ObjectKind,
    raw_fields: Sequence[Mapping[str, Any]],
    selected: Iterable[str] | None = None,
) -> ObjectSchema:
    """The load schema of a table/view; ``selected`` restricts it to those fields (+ PK_ID)."""
    specs = [spec for f in raw_fields if (spec := field_spec(f)) is not None]
    specs = [sp for sp in specs if sp.name.upper() != s.PK_FIELD]
    if selected is not None:
        wanted = {n.lower(): n for n in selected if n.upper() != s.PK_FIELD}
        by_name = {sp.name.lower(): sp for sp in specs}
        missing = [n for k, n in wanted.items() if k not in by_name]
        if missing:
            raise CaspioConfigError(
                f"Unknown field(s) {', '.join(missing)} in table_options.{name}.fields: "
                f"{name} has {', '.join(sp.name for sp in specs) or 'no readable fields'}"
            )
        specs = [sp for sp in specs if sp.name.lower() in wanted]
    return ObjectSchema(name, kind, (pk_spec(kind), *specs), tuple(raw_fields))


def changed_column_types(
    schema: Schema, table_name: str, columns: TTableSchemaColumns
) -> list[tuple[str, str, str]]:
    """(column, type loaded so far, type Caspio now gives) for each field whose type changed.

    The destination column keeps its old type, so the rows would fail to load, or, in a
    merge, be deleted and then fail to be inserted again (dlt's merge is not atomic)."""
    table = schema.tables.get(schema.naming.normalize_table_identifier(table_name)) or {}
    existing = table.get("columns", {})
    changed: list[tuple[str, str, str]] = []
    for name, column in columns.items():
        old = existing.get(schema.naming.normalize_identifier(name)) or {}
        old_type, new_type = old.get("data_type"), column.get("data_type")
        if old_type and new_type and old_type != new_type:
            changed.append((name, old_type, new_type))
    return changed
