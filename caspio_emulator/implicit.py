"""SQL Server's implicit conversion of a string literal compared with a typed field.

Caspio pastes ``q.where`` into SQL Server, where ``Qty = ''`` compares an ``int`` column with a
``varchar`` constant: varchar has the lower type precedence, so the constant is converted to
``int`` (``''`` becomes 0, ``' 5 '`` becomes 5, ``'abc'`` fails the whole query). Caspio's own
n8n node quotes every "equals" value and tests emptiness with ``F = ''`` on any field type,
so these conversions decide which rows a real client gets. SQLite would compare the text
instead (``''`` never equals 0), hence this module: the q.* compiler converts each string
literal that meets a typed field (or a typed expression) here, before binding it.

Target types: INTEGER, AUTONUMBER and PK_ID are ``int``; NUMBER is ``float``, CURRENCY is
``money`` (both guesses: Caspio does not publish its column types); YES/NO is ``bit``;
DATE/TIME and TIMESTAMP are ``datetime``. Error texts are SQL Server's own.
"""

from __future__ import annotations

import re
from typing import Any

from .wire import DATE_TYPES, WireError, to_date

INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# the SQL Server type a Caspio field type is stored as
SQL_TYPES = {
    "INTEGER": "int",
    "AUTONUMBER": "int",
    "NUMBER": "float",
    "CURRENCY": "money",
    "YES/NO": "bit",
}
# the type assumed for an expression of a known kind but no single field (``Qty * 2``)
KIND_TYPES = {"number": "float", "bool": "bit", "date": "datetime"}

_INT_RE = re.compile(r" *([+-]?)(\d*) *")
_FLOAT_RE = re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *")
_MONEY_RE = re.compile(r" *([+-]?) *\$? *([+-]?)((?:\d[\d,]*)?(?:\.\d*)?) *")


class ConversionError(ValueError):
    """A literal SQL Server cannot convert; the message is SQL Server's."""


def sql_type(kind: str | None, field_type: str | None) -> str | None:
    """The SQL Server type a string literal compared with this side is converted to, or None
    when it stays text (text fields, lists, unknown kinds)."""
    if field_type is not None:
        if field_type in DATE_TYPES:
            return "datetime"
        return SQL_TYPES.get(field_type)  # text, GUID, lists, ...: compared as text
    return KIND_TYPES.get(kind or "")


def convert(text: str, target: str, national: bool = False) -> Any:
    """`text` converted to `target` ("int", "float", "money", "bit", "datetime") the way SQL
    Server converts a varchar (nvarchar when `national`) constant; the stored SQLite value."""
    source = "nvarchar" if national else "varchar"
    if target == "datetime":
        if not text.strip(" "):
            return "1900-01-01T00:00:00"  # SQL Server's zero date
        try:
            return to_date(text)
        except WireError as exc:
            raise ConversionError(
                "Conversion failed when converting date and/or time from character string "
                f"'{text}'."
            ) from exc
    if target == "int":
        m = _INT_RE.fullmatch(text)
        if m is None:
            raise ConversionError(
                f"Conversion failed when converting the {source} value '{text}' to data type int."
            )
        value = int(m.group(1) + m.group(2)) if m.group(2) else 0  # '', ' ', '-' are 0
        if not INT_MIN <= value <= INT_MAX:
            raise ConversionError(
                f"The conversion of the {source} value '{text}' overflowed an int column."
            )
        return value
    if target == "bit":
        word = text.strip(" ").lower()
        if word in ("true", "false"):
            return 1 if word == "true" else 0
        m = _INT_RE.fullmatch(text)
        if m is None:
            raise ConversionError(
                f"Conversion failed when converting the {source} value '{text}' to data type bit."
            )
        return 1 if m.group(2) and int(m.group(2)) != 0 else 0
    if target == "float":
        if not text.strip(" "):
            return 0.0
        if _FLOAT_RE.fullmatch(text) is None:
            raise ConversionError(f"Error converting data type {source} to float.")
        return float(text)
    if target == "money":
        m = _MONEY_RE.fullmatch(text)
        if m is None or (m.group(1) and m.group(2)):
            raise ConversionError(
                "Cannot convert a char value to money. The char value has incorrect syntax."
            )
        digits = m.group(3).replace(",", "")
        amount = float(digits) if digits.strip(".") else 0.0
        return round(-amount if "-" in (m.group(1), m.group(2)) else amount, 4)
    raise ValueError(f"unknown target type {target!r}")
