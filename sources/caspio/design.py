"""Table design changes: what differs between the fields a table was loaded with and its
fields in Caspio now.

Caspio keeps no history of design changes and touches no ``OnUpdate`` stamp when a field is
added, deleted, renamed or retyped, so a cursor alone never sees them. Every run compares the
``/fields`` answer stored with the last load against the current one; a rename shows as one
field deleted and one added, as the API itself sees it.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .schema import field_spec


@dataclasses.dataclass(frozen=True)
class Retyped:
    """A field whose loaded column type changes: ``old``/``new`` are Caspio types,
    ``old_column``/``new_column`` the destination column types they load as."""

    name: str
    old: str
    new: str
    old_column: str
    new_column: str


@dataclasses.dataclass(frozen=True)
class DesignChanges:
    """Fields added, deleted and retyped since the last load (names as Caspio spells them)."""

    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    retyped: tuple[Retyped, ...] = ()
    rezoned: tuple[str, ...] = ()
    """TIMESTAMP fields whose time zone changed: same column type, other UTC values."""

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted or self.retyped or self.rezoned)

    @property
    def needs_full_read(self) -> bool:
        """Every row holds new values: added fields (formulas compute all rows at once) and
        re-zoned stamps are filled only by reading the whole table again."""
        return bool(self.added or self.rezoned)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"field(s) added in Caspio: {', '.join(self.added)}")
        if self.deleted:
            parts.append(f"field(s) no longer in Caspio: {', '.join(self.deleted)} (columns kept)")
        if self.rezoned:
            parts.append(f"time zone changed in Caspio: {', '.join(self.rezoned)}")
        if self.retyped:
            parts.append(
                "field(s) retyped: "
                + ", ".join(f"{r.name} ({r.old} -> {r.new})" for r in self.retyped)
            )
        return "; ".join(parts)


def _column_type(field: Mapping[str, Any]) -> str | None:
    """The destination type a field loads as (``None``: never loaded, e.g. PASSWORD)."""
    spec = field_spec(field)
    if spec is None:
        return None
    column = spec.column
    data_type = str(column.get("data_type"))
    if data_type == "decimal":
        return f"decimal({column.get('precision')},{column.get('scale')})"
    if data_type == "timestamp":
        return "timestamp with time zone" if column.get("timezone") else "timestamp"
    return data_type


def _loaded(fields: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(f.get("Name")).lower(): f for f in fields if _column_type(f) is not None}


def design_changes(
    loaded_with: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
    selected: Sequence[str] | None = None,
) -> DesignChanges:
    """What changed between two ``/fields`` answers, restricted to ``selected`` fields (the
    ``table_options.fields`` of the object) when given. A type change that loads into the
    same column type (TEXT -> STRING) is no change for the destination and is not reported."""
    old, new = _loaded(loaded_with), _loaded(current)
    if selected is not None:
        wanted = {s.lower() for s in selected}
        old = {k: v for k, v in old.items() if k in wanted}
        new = {k: v for k, v in new.items() if k in wanted}
    added = tuple(str(new[k].get("Name")) for k in new if k not in old)
    deleted = tuple(str(old[k].get("Name")) for k in old if k not in new)
    retyped = []
    rezoned = []
    for key in sorted(old.keys() & new.keys()):
        before, after = _column_type(old[key]), _column_type(new[key])
        if before == after and old[key].get("TimeZone") != new[key].get("TimeZone"):
            rezoned.append(str(new[key].get("Name")))
        elif before != after:
            retyped.append(
                Retyped(
                    name=str(new[key].get("Name")),
                    old=str(old[key].get("Type")),
                    new=str(new[key].get("Type")),
                    old_column=str(before),
                    new_column=str(after),
                )
            )
    return DesignChanges(added, deleted, tuple(retyped), tuple(rezoned))
