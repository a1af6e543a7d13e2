"""Per-table options (``table_options`` in config) and name/glob resolution of objects.

``table_options`` maps a table/view name or glob pattern to overrides; names match
case-insensitively (as Caspio matches them); an exact name wins over patterns::

    [sources.caspio.table_options.Orders]
    cursor_field = "Modified"        # or false: no incremental read for this table
    write_disposition = "append"     # append by PK_ID (insert-only tables)
    fields = ["Order_ID", "Total"]
    lag = 300                        # re-read 5 minutes before the mark (late writers)
    where = "Status <> 'draft'"      # an extra filter, ANDed
    initial_value = 2024-01-01T00:00:00Z   # read from this cursor value on (windows.py)
    end_value = 2024-02-01T00:00:00Z       # with initial_value: a backfill window, state kept
    deletes = "mark"                 # reconcile: mark deleted rows (or "delete", "off")
"""

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from .errors import CaspioConfigError, unknown_objects_error
from .filters import check_fragment, identifier
from .settings import ObjectKind

VALID_OPTIONS = (
    "cursor_field",
    "primary_key",
    "write_disposition",
    "fields",
    "lag",
    "where",
    "initial_value",
    "end_value",
    "deletes",  # read by the reconcile pass, not by the sync itself
)
WRITE_DISPOSITIONS = ("merge", "replace", "append")
DeleteMode = Literal["delete", "mark", "off"]
"""What ``reconcile`` does with a row deleted in Caspio: delete it, mark it, or nothing."""
DELETE_MODES: tuple[DeleteMode, ...] = ("delete", "mark", "off")
GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass(frozen=True)
class TableOptions:
    cursor_field: str | None = None
    no_cursor: bool = False
    primary_key: str | tuple[str, ...] | None = None
    write_disposition: str | None = None
    fields: tuple[str, ...] | None = None
    lag: float = 0.0
    where: str | None = None
    deletes: DeleteMode = "delete"
    initial_value: dt.datetime | None = None
    end_value: dt.datetime | None = None


def is_glob(name: str) -> bool:
    return any(c in GLOB_CHARS for c in name)


def _one_of(key: str, option: str, value: Any, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise CaspioConfigError(
            f"table_options.{key}.{option} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value


def _parse(key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise CaspioConfigError(f"table_options.{key} must be a table of options, got {raw!r}")
    unknown = sorted(set(raw) - set(VALID_OPTIONS))
    if unknown:
        raise CaspioConfigError(
            f"Unknown option(s) {', '.join(unknown)} in table_options.{key}: valid options are "
            f"{', '.join(VALID_OPTIONS)}"
        )
    out: dict[str, Any] = {}
    if "cursor_field" in raw:
        cf = raw["cursor_field"]
        if cf in (None, False, "", "none", "None"):
            out["no_cursor"] = True
            out["cursor_field"] = None
        elif isinstance(cf, str):
            out["cursor_field"] = identifier(cf)
            out["no_cursor"] = False
        else:
            raise CaspioConfigError(f"table_options.{key}.cursor_field must be a field name")
    if "primary_key" in raw:
        pk = raw["primary_key"]
        if isinstance(pk, str):
            out["primary_key"] = identifier(pk)
        elif isinstance(pk, Sequence) and pk and all(isinstance(p, str) for p in pk):
            out["primary_key"] = tuple(identifier(p) for p in pk)
        else:
            raise CaspioConfigError(f"table_options.{key}.primary_key must be a field name")
    if "write_disposition" in raw:
        out["write_disposition"] = _one_of(
            key, "write_disposition", raw["write_disposition"], WRITE_DISPOSITIONS
        )
    if "fields" in raw:
        fields = raw["fields"]
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        if not isinstance(fields, Sequence) or not all(isinstance(f, str) for f in fields):
            raise CaspioConfigError(f"table_options.{key}.fields must be a list of field names")
        out["fields"] = tuple(identifier(f) for f in fields)
    if "lag" in raw:
        try:
            lag = float(raw["lag"])
        except (TypeError, ValueError):
            raise CaspioConfigError(
                f"table_options.{key}.lag must be a number of seconds, got {raw['lag']!r}"
            ) from None
        if lag < 0:
            raise CaspioConfigError(f"table_options.{key}.lag must be >= 0")
        out["lag"] = lag
    if "deletes" in raw:
        mode = raw["deletes"]
        mode = "delete" if mode is True else "off" if mode in (False, None) else mode
        out["deletes"] = _one_of(key, "deletes", mode, DELETE_MODES)
    for bound in ("initial_value", "end_value"):
        if bound in raw:
            out[bound] = _datetime(key, bound, raw[bound])
    if "end_value" in out and "initial_value" not in out:
        raise CaspioConfigError(
            f"table_options.{key}.end_value needs an initial_value (the window's start)"
        )
    if "where" in raw:
        where = raw["where"]
        if not isinstance(where, str):
            raise CaspioConfigError(f"table_options.{key}.where must be a string")
        out["where"] = check_fragment(where) if where.strip() else None
    return out


def _datetime(key: str, option: str, value: Any) -> dt.datetime:
    """A window bound: a TOML datetime or an ISO 8601 string (naive = UTC)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise CaspioConfigError(
            f"table_options.{key}.{option} must be a date/time such as 2024-01-31T00:00:00Z, "
            f"got {value!r}"
        ) from None


class TableOptionsMap(Mapping[str, Mapping[str, Any]]):
    """``table_options`` parsed once, at the edge: each key (a name or a glob) with its
    validated options; ``for_object`` merges the ones that apply to an object."""

    def __init__(self, parsed: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._parsed = dict(parsed or {})

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        return self._parsed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed)

    def __len__(self) -> int:
        return len(self._parsed)

    def for_object(self, name: str) -> TableOptions:
        """Patterns first, in config order, then the exact name (case-insensitive) wins."""
        merged: dict[str, Any] = {}
        lowered = name.lower()
        for key, opts in self._parsed.items():
            if is_glob(key) and fnmatch.fnmatchcase(lowered, key.lower()):
                merged.update(opts)
        for key, opts in self._parsed.items():
            if not is_glob(key) and key.lower() == lowered:
                merged.update(opts)
        return TableOptions(**merged)


def validate_table_options(
    table_options: Mapping[str, Mapping[str, Any]] | None,
) -> TableOptionsMap:
    """Parses every entry up front, so a typo fails before any API call."""
    if isinstance(table_options, TableOptionsMap):
        return table_options
    if not table_options:
        return TableOptionsMap()
    if not isinstance(table_options, Mapping):
        raise CaspioConfigError("table_options must map table names to option tables")
    return TableOptionsMap({str(k): _parse(str(k), v) for k, v in table_options.items()})


def resolve_names(
    patterns: Sequence[str], available: Iterable[tuple[str, ObjectKind]]
) -> list[tuple[str, ObjectKind]]:
    """Expands names/globs against ``(name, kind)`` pairs; unknown names fail listing what is."""
    avail = list(available)
    chosen: list[tuple[str, ObjectKind]] = []
    missing: list[str] = []
    for pattern in patterns:
        p = pattern.lower()
        if is_glob(pattern):
            hits = [a for a in avail if fnmatch.fnmatchcase(a[0].lower(), p)]
        else:
            exact = [a for a in avail if a[0] == pattern]
            hits = exact or [a for a in avail if a[0].lower() == p][:1]
        if not hits:
            missing.append(pattern)
        for hit in hits:
            if hit not in chosen:
                chosen.append(hit)
    if missing:
        raise unknown_objects_error(missing, [a[0] for a in avail])
    return chosen
