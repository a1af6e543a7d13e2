"""Caspio field objects and value conversion: client JSON <-> stored SQLite value <-> wire JSON.

The store keeps every value in the form that makes SQL Server semantics cheap in SQLite:
dates as naive ISO strings ``YYYY-MM-DDTHH:MM:SS`` (lexical order == time order, so a
``PK_ID``-style keyset on a date works with plain comparisons), Yes/No as 0/1 (so ``Active = 1``
works as in T-SQL), list fields as a JSON array of 1-based item ids. The wire side turns those
back into what Caspio sends (README section 4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .zones import iana_zone

TEXT_TYPES = {"STRING", "TEXT", "FILE", "PASSWORD", "GUID", "RANDOM ID", "PREFIXED AUTONUMBER"}
DATE_TYPES = {"DATE/TIME", "TIMESTAMP", "LIST-DATE/TIME"}
LIST_TYPES = {"LIST-STRING", "LIST-NUMBER", "LIST-DATE/TIME"}
READ_ONLY_TYPES = {"AUTONUMBER", "PREFIXED AUTONUMBER", "GUID", "RANDOM ID", "TIMESTAMP"}
ALL_TYPES = {
    "STRING",
    "TEXT",
    "NUMBER",
    "INTEGER",
    "CURRENCY",
    "DATE/TIME",
    "YES/NO",
    "FILE",
    "ATTACHMENT",
    "TIMESTAMP",
    "AUTONUMBER",
    "PREFIXED AUTONUMBER",
    "GUID",
    "RANDOM ID",
    "PASSWORD",
    "LIST-STRING",
    "LIST-NUMBER",
    "LIST-DATE/TIME",
}
MAX_LEN = {"STRING": 255, "TEXT": 64000, "FILE": 255, "PASSWORD": 255}
# INTEGER is SQL Server's int: two's complement, so one more value below zero than above
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class WireError(ValueError):
    """A value that does not fit its field (Caspio answers 400 InvalidInputValue)."""


@dataclass(frozen=True)
class Formula:
    """A formula field's expression: the T-SQL the client wrote, its SQLite form over the
    table's columns (literals inlined, cast to the field's type) and the fields it reads."""

    text: str
    sql: str
    refs: tuple[str, ...]  # lower-cased names of the fields the expression reads


@dataclass
class Field:
    """One Caspio field, with the OpenAPI ``BaseColumnResult`` properties.

    ``ListField`` is kept as the ordered item list (ids are 1-based positions, as in
    DATASET.md); on the wire it becomes ``{"1": "Red", ...}``.
    """

    Name: str
    Type: str
    Unique: bool = False
    Editable: bool = True
    Description: str = ""
    DisplayOrder: int = 0
    Label: str = ""
    UniqueAllowNulls: bool = False
    IsFormula: bool = False
    OnInsert: bool | None = None
    OnUpdate: bool | None = None
    TimeZone: str | None = None
    Format: str | None = None
    Prefix: str | None = None
    Length: int | None = None
    ListField: list[Any] | None = None
    TableFieldName: str | None = None
    # not on the wire: the SQLite column (views: the view's column) this field reads
    column: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # not on the wire: set for a formula field added through the API (a generated column)
    formula: Formula | None = None

    @property
    def read_only(self) -> bool:
        """Caspio computes these; a write naming them is rejected."""
        return self.Type in READ_ONLY_TYPES or self.IsFormula or not self.Editable

    def to_wire(self, view: bool = False) -> dict[str, Any]:
        """The ``/fields`` object (``TableFieldName`` only for view fields)."""
        out: dict[str, Any] = {"Name": self.Name}
        if view:
            out["TableFieldName"] = self.TableFieldName
        out.update(
            {
                "Type": self.Type,
                "Unique": self.Unique,
                "Editable": self.Editable,
                "Description": self.Description,
                "DisplayOrder": self.DisplayOrder,
                "Label": self.Label,
                "UniqueAllowNulls": self.UniqueAllowNulls,
                "IsFormula": self.IsFormula,
                "OnInsert": self.OnInsert,
                "OnUpdate": self.OnUpdate,
                "TimeZone": self.TimeZone,
                "Format": self.Format,
                "Prefix": self.Prefix,
                "Length": self.Length,
                "ListField": (
                    {str(i + 1): v for i, v in enumerate(self.ListField)}
                    if self.ListField is not None
                    else None
                ),
            }
        )
        out.update(self.extra)
        return out


def make_field(spec: dict[str, Any], order: int) -> Field:
    """A Field from a DATASET.md field object, filling Caspio's defaults.

    Raises ValueError with a short reason; the dataset loader adds table/field context.
    """
    known = set(Field.__dataclass_fields__) - {"column", "extra", "TableFieldName", "formula"}
    attachment_keys = {k for k in spec if k.startswith("Attachment")}
    unknown = set(spec) - known - attachment_keys
    if unknown:
        raise ValueError(f"unknown field properties {sorted(unknown)}")
    name = spec.get("Name")
    ftype = spec.get("Type")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name):
        raise ValueError(
            f"invalid field Name {name!r} (letters, digits and _, start with a letter, <= 32)"
        )
    if name.upper() == "PK_ID":
        raise ValueError("PK_ID is implicit; do not list it as a field")
    if not isinstance(ftype, str) or ftype.upper() not in ALL_TYPES:
        raise ValueError(f"unknown Type {ftype!r} (one of {sorted(ALL_TYPES)})")
    ftype = ftype.upper()
    f = Field(Name=name, Type=ftype, DisplayOrder=order, column=name)
    for key in ("Unique", "UniqueAllowNulls", "IsFormula", "Editable"):
        if key in spec and spec[key] is not None:
            if not isinstance(spec[key], bool):
                raise ValueError(f"{key} must be true/false")
            setattr(f, key, spec[key])
    for key in ("Description", "Label"):
        if spec.get(key) is not None:
            setattr(f, key, str(spec[key]))
    if spec.get("DisplayOrder"):
        f.DisplayOrder = int(spec["DisplayOrder"])
    if ftype in READ_ONLY_TYPES:
        f.Editable = False
    if ftype == "AUTONUMBER" and "Unique" not in spec:
        f.Unique = True
    if ftype == "TIMESTAMP":
        f.OnInsert = bool(spec.get("OnInsert", False))
        f.OnUpdate = bool(spec.get("OnUpdate", False))
        f.TimeZone = spec.get("TimeZone") or "UTC"
        iana_zone(f.TimeZone)  # raises on an unknown zone
    elif any(spec.get(k) is not None for k in ("OnInsert", "OnUpdate", "TimeZone")):
        raise ValueError("OnInsert/OnUpdate/TimeZone apply to TIMESTAMP fields only")
    if ftype == "PREFIXED AUTONUMBER":
        f.Prefix = spec.get("Prefix") or ""
        f.Format = spec.get("Format") or "1"
        if not re.fullmatch(r"0{0,6}1", f.Format):
            raise ValueError(f"PREFIXED AUTONUMBER Format {f.Format!r} (1, 01, ..., 0000001)")
    if ftype == "RANDOM ID":
        f.Format = spec.get("Format") or "0U"
        f.Prefix = spec.get("Prefix") or ""
        f.Length = int(spec.get("Length") or 12)
        if f.Format not in ("0", "U", "0U"):
            raise ValueError(f"RANDOM ID Format {f.Format!r} (0, U or 0U)")
        if not (6 <= f.Length <= 12):
            raise ValueError("RANDOM ID Length must be 6 to 12")
    if ftype in LIST_TYPES:
        items = spec.get("ListField")
        if not isinstance(items, list) or not items:
            raise ValueError("LIST fields need a non-empty ListField array")
        if ftype == "LIST-NUMBER":
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
                raise ValueError("LIST-NUMBER ListField items must be numbers")
        elif ftype == "LIST-DATE/TIME":
            items = [to_date(v) for v in items]
        else:
            items = [str(v) for v in items]
        f.ListField = list(items)
    elif spec.get("ListField") is not None:
        raise ValueError("ListField applies to LIST-* fields only")
    for k in attachment_keys:
        if ftype != "ATTACHMENT":
            raise ValueError(f"{k} applies to ATTACHMENT fields only")
        f.extra[k] = spec[k]
    return f


# ---------------------------------------------------------------- dates

_DATE_RES = [
    re.compile(
        r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
        r"\s*(?:Z|[+-]\d{2}:?\d{2})?"
    ),
    re.compile(r"(\d{4})(\d{2})(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?"),
]
_US_RE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?"
)


def to_date(value: Any) -> str:
    """Parse a date/time as SQL Server would accept it; return the stored naive ISO string.

    Accepts ISO 8601 (``T`` or space, optional seconds, milliseconds dropped, a ``Z``/offset
    suffix dropped: Caspio keeps wall time), ``YYYYMMDD`` and US ``MM/DD/YYYY [hh:mm[:ss] AM]``.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat(timespec="seconds")
    if not isinstance(value, str):
        raise WireError(f"{value!r} is not a date")
    s = value.strip()
    for rx in _DATE_RES:
        m = rx.fullmatch(s)
        if m:
            y, mo, d, h, mi, se = m.groups()
            break
    else:
        m = _US_RE.fullmatch(s)
        if not m:
            raise WireError(f"{value!r} is not a date")
        mo, d, y, h, mi, se, ampm = m.groups()
        if ampm and h:
            hh = int(h) % 12 + (12 if ampm.lower() == "pm" else 0)
            h = str(hh)
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(se or 0))
    except ValueError as exc:
        raise WireError(f"{value!r} is not a valid date ({exc})") from exc
    return dt.isoformat(timespec="seconds")


# ---------------------------------------------------------------- client value -> stored


def to_number(value: Any) -> float:
    """A client number (JSON number or numeric text) as a finite float; WireError otherwise."""
    if isinstance(value, bool):
        raise WireError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError as exc:
            raise WireError(f"{value!r} is not a number") from exc
    else:
        raise WireError(f"{value!r} is not a number")
    if math.isnan(out) or math.isinf(out):
        raise WireError(f"{value!r} is not a finite number")
    return out


def _list_ids(f: Field, value: Any) -> str | None:
    """List values as ids: [1, 3], ["Red", "Blue"] (item values) or {"1": "Red"} objects."""
    items = f.ListField or []
    if value is None:
        return None
    if isinstance(value, dict):
        value = list(value.keys())
    if not isinstance(value, list):
        value = [value]
    ids: list[int] = []
    for v in value:
        idx: int | None = None
        if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= len(items):
            idx = v
        elif isinstance(v, str) and v.isdigit() and 1 <= int(v) <= len(items):
            idx = int(v)
        else:
            for i, item in enumerate(items):
                if item == v or (isinstance(item, str) and isinstance(v, str) and item == v):
                    idx = i + 1
                    break
            if idx is None and f.Type == "LIST-DATE/TIME" and isinstance(v, str):
                try:
                    d = to_date(v)
                except WireError:
                    d = None
                if d in items:
                    idx = items.index(d) + 1
        if idx is None:
            raise WireError(f"{v!r} is not an item of list field {f.Name}")
        if idx not in ids:
            ids.append(idx)
    return list_to_stored(f, ids)


def list_to_stored(f: Field, ids: list[int]) -> str | None:
    """Lists are stored as their wire object text (``{"1":"Red","3":"Blue"}``): Caspio cannot
    filter them anyway, and the records path can then embed them without a conversion."""
    items = f.ListField or []
    if not ids:
        return None
    return orjson.dumps({str(i): items[i - 1] for i in sorted(set(ids))}).decode()


def to_stored(f: Field, value: Any) -> Any:
    """A client-written value (README section 4) -> the stored value; WireError if it won't fit."""
    if value is None:
        return None
    t = f.Type
    if t in ("STRING", "TEXT", "FILE", "PASSWORD", "GUID", "RANDOM ID", "PREFIXED AUTONUMBER"):
        if isinstance(value, bool):
            value = "True" if value else "False"
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise WireError(f"{value!r} is not text")
        limit = MAX_LEN.get(t)
        if limit and len(value) > limit:
            raise WireError(f"text longer than {limit} characters for field {f.Name}")
        if value == "" and t != "PASSWORD":
            return None  # guess: Caspio stores an empty text as null
        return value
    if t in ("NUMBER",):
        return to_number(value)
    if t == "CURRENCY":
        return round(to_number(value), 4)
    if t in ("INTEGER", "AUTONUMBER"):
        n = to_number(value)
        if n != int(n):
            raise WireError(f"{value!r} is not an integer")
        if not INT_MIN <= n <= INT_MAX:
            raise WireError(f"{value!r} is outside the INTEGER range {INT_MIN}..{INT_MAX}")
        return int(n)
    if t in ("DATE/TIME", "TIMESTAMP"):
        if value == "":
            return None
        return to_date(value)
    if t == "YES/NO":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)) and value in (0, 1):
            return int(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return int(value.strip().lower() in ("true", "1"))
        raise WireError(f"{value!r} is not a Yes/No value")
    if t in LIST_TYPES:
        return _list_ids(f, value)
    if t == "ATTACHMENT":
        if not isinstance(value, str):
            raise WireError("attachment values are file names")
        return value
    raise WireError(f"cannot write field type {t}")


# ---------------------------------------------------------------- stored -> wire

Converter = Callable[[Any], Any] | None


def _bool(v: Any) -> Any:
    return None if v is None else bool(v)


def _float(v: Any) -> Any:
    return None if v is None else float(v)


def _currency(v: Any) -> Any:
    return None if v is None else round(float(v), 4)


def _list(v: Any) -> Any:
    return None if v is None else orjson.loads(v)


def wire_converter(f: Field) -> Converter:
    """The stored -> wire function for a field, or None when the stored value is the wire value
    (the fast path that keeps big pages cheap)."""
    t = f.Type
    if t == "YES/NO":
        return _bool
    if t == "NUMBER":
        return _float
    if t == "CURRENCY":
        return _currency
    if t in LIST_TYPES:
        return _list
    return None


def json_sql(expr: str, ftype: str | None) -> str:
    """The SQLite expression that renders a stored value as its Caspio wire JSON inside
    ``json_object`` (the records fast path: rows become JSON in C, not in Python)."""
    if ftype == "YES/NO":
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN json('true') "
            "ELSE json('false') END"
        )
    if ftype in LIST_TYPES:
        return f"json({expr})"
    if ftype in ("NUMBER", "CURRENCY"):
        return f"CAST({expr} AS REAL)"
    return expr
