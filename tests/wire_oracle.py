"""What a Caspio wire value must be in a destination, by field type, computed by the tests.

Used by the PostgreSQL end-to-end test and the reliability parity checks. Comparison is typed:
a boolean is not a number (``True == 1.0`` in Python), a naive date is not an aware one, and
microseconds count. Zoned stamps go through ``tests/zone_oracle.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from tests.zone_oracle import UTC, expected_utc

TEXT_TYPES = {
    "STRING",
    "TEXT",
    "FILE",
    "GUID",
    "RANDOM ID",
    "PREFIXED AUTONUMBER",
    "ATTACHMENT",
}


def field_types(emulator: Any, name: str) -> dict[str, dict[str, Any]]:
    """Field objects of a table or view, read from the emulator's store (not the connector)."""
    obj = emulator.store.table(name) or emulator.store.view(name)
    assert obj is not None, name
    return {f.Name: f.to_wire() for f in obj.fields}


def expected(field: dict[str, Any] | None, value: Any) -> Any:
    """The destination value of one wire value (``field`` None: the PK_ID)."""
    if value is None:
        return None
    if field is None:
        return value  # PK_ID: an int in a table, a text in a view
    t = str(field["Type"]).upper()
    if t in TEXT_TYPES:
        return str(value)
    if t in ("INTEGER", "AUTONUMBER"):
        assert isinstance(value, int) and not isinstance(value, bool), value
        return value
    if t == "NUMBER":
        return float(value)
    if t == "CURRENCY":
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    if t == "YES/NO":
        assert isinstance(value, bool), value
        return value
    if t == "DATE/TIME":
        return dt.datetime.fromisoformat(value)
    if t == "TIMESTAMP":
        return expected_utc(dt.datetime.fromisoformat(value), field.get("TimeZone"))
    if t.startswith("LIST-"):
        return value
    raise AssertionError(f"no oracle for Caspio type {t}")


def loaded(value: Any) -> Any:
    """A destination value in comparable form: aware stamps in UTC, JSON text parsed."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, str) and value[:1] == "{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def same(want: Any, got: Any) -> bool:
    """Equal and of the same type (Decimal scale ignored; aware vs naive told apart)."""
    if want is None or got is None:
        return want is got
    if type(want) is not type(got):
        return False
    if isinstance(want, dt.datetime):
        return (want.tzinfo is None) == (got.tzinfo is None) and want == got
    return bool(want == got)
