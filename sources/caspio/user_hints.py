"""dlt hints a user set on a Caspio resource: they win over ``table_options`` and the defaults.

The source yields every item with its own hints (``dlt.mark.with_hints``), which dlt merges into
the resource, so a user's ``resource.apply_hints(write_disposition=..., primary_key=...,
columns=...)`` or ``pipeline.run(..., write_disposition=...)`` would be overwritten. The
resource is created with hints only the source uses (``SOURCE_DEFAULTS``); whatever differs at
run time from those and from what the source itself set last run is the user's, and decides:

- ``write_disposition``: ``merge`` (on the cursor), ``replace`` (read in full) or ``append``
  (only PK_IDs above the last one loaded), exactly as the same ``table_options`` value; a merge
  strategy other than delete-insert/upsert (scd2) stops the run: it needs every row each run;
- ``primary_key``: the merge key, a Caspio field (by Caspio or destination name);
- ``columns``: merged over Caspio's typed columns; a ``data_type`` (or precision, scale,
  timezone) other than the one Caspio's values have stops the run in one line.

Precedence: dlt hints > ``table_options`` > what Caspio's ``/fields`` imply.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns, TWriteDispositionDict

from .errors import CaspioConfigError
from .filters import identifier
from .options import WRITE_DISPOSITIONS, TableOptions
from .schema import ObjectSchema

SOURCE_WRITE_DISPOSITION: TWriteDispositionDict = {"disposition": "append"}
"""What a Caspio resource is created with: not dlt's default string, so a user's ``"append"``
(which dlt stores as given) is told apart from the source's own value."""
TYPE_PROPS = ("data_type", "precision", "scale", "timezone")
"""Column properties that must match Caspio's values (anything else a user may set)."""
MERGE_STRATEGIES = ("delete-insert", "upsert")


@dataclasses.dataclass(frozen=True)
class UserHints:
    """The hints a user set on the resource (``None``: not set by the user)."""

    write_disposition: Any = None
    primary_key: Any = None
    columns: Mapping[str, Mapping[str, Any]] | None = None

    def updated(self, newer: "UserHints") -> "UserHints":
        """These hints with what ``newer`` sets replacing them."""
        changes = {k: v for k, v in dataclasses.asdict(newer).items() if v is not None}
        return dataclasses.replace(self, **changes)


def snapshot(hints: Mapping[str, Any] | None) -> dict[str, Any]:
    """The hints that decide what is read and how it lands, as comparable values."""
    hints = hints or {}
    return {
        "write_disposition": hints.get("write_disposition"),
        "primary_key": hints.get("primary_key"),
        "columns": hints.get("original_columns"),
    }


def read_user_hints(source_set: Mapping[str, Any]) -> UserHints:
    """The running resource's hints that neither the source's defaults nor its own last run's
    hints (``source_set``: both, per key) explain."""
    try:
        current = snapshot(dlt.current.resource()._hints)
    except Exception:  # iterated by hand, outside dlt's extract: no user hints
        return UserHints()
    found = {
        key: value
        for key, value in current.items()
        if value not in (None, {}) and all(value != known for known in source_set.get(key, ()))
    }
    return UserHints(**found)


def apply_to_options(name: str, options: TableOptions, user: UserHints) -> TableOptions:
    """``options`` with the user's write disposition and primary key (they win)."""
    changes: dict[str, Any] = {}
    if user.write_disposition is not None:
        changes["write_disposition"] = _disposition(name, user.write_disposition)
    if user.primary_key is not None:
        keys = user.primary_key
        if callable(keys):
            raise CaspioConfigError(
                f"{name}: a primary_key hint computed per item is not supported: give field "
                "names in apply_hints(primary_key=...)"
            )
        keys = [keys] if isinstance(keys, str) else list(keys)
        changes["primary_key"] = tuple(keys) if len(keys) > 1 else keys[0]
    return dataclasses.replace(options, **changes) if changes else options


def _disposition(name: str, value: Any) -> str:
    disposition, strategy = value, None
    if isinstance(value, Mapping):
        disposition, strategy = value.get("disposition"), value.get("strategy")
    if disposition not in WRITE_DISPOSITIONS:
        raise CaspioConfigError(
            f"{name}: write_disposition hint {value!r} is not one of "
            f"{', '.join(WRITE_DISPOSITIONS)}: fix apply_hints/pipeline.run(write_disposition=...)"
        )
    if disposition == "merge" and strategy not in (None, *MERGE_STRATEGIES):
        raise CaspioConfigError(
            f"{name}: write_disposition strategy {strategy!r} needs every row on every run, and "
            "an incremental read has only the changed ones: use merge (delete-insert or upsert) "
            "or replace in apply_hints/pipeline.run(write_disposition=...)"
        )
    return str(disposition)


def resolve_primary_key(name: str, schema: ObjectSchema, keys: Any, normalize: Any) -> Any:
    """The user's primary key as Caspio field names (given by Caspio or destination name)."""
    wanted = [keys] if isinstance(keys, str) else list(keys)
    by_name = {n.lower(): n for n in schema.columns}
    by_name.update({normalize(n): n for n in schema.columns})
    found = []
    for key in wanted:
        field = by_name.get(key) or by_name.get(str(key).lower())
        if field is None:
            raise CaspioConfigError(
                f"{name}: primary_key hint {key!r} is not a field of {name} (fields: "
                f"{', '.join(schema.columns)}): fix apply_hints(primary_key=...)"
            )
        found.append(identifier(field))
    return tuple(found) if len(found) > 1 else found[0]


def merge_columns(
    name: str,
    columns: TTableSchemaColumns,
    user: Mapping[str, Mapping[str, Any]] | None,
    normalize: Any,
) -> TTableSchemaColumns:
    """Caspio's columns with the user's column hints over them; a hint that would change
    what a Caspio value becomes stops the run."""
    if not user:
        return columns
    merged: TTableSchemaColumns = {k: dict(v) for k, v in columns.items()}  # type: ignore[misc]
    by_name = {normalize(n): n for n in columns}
    for key, hint in user.items():
        field = by_name.get(normalize(key))
        if field is None:
            merged[key] = dict(hint)  # type: ignore[assignment]
            continue
        ours = columns[field]
        for prop in TYPE_PROPS:
            if prop in hint and hint[prop] is not None and hint[prop] != ours.get(prop):
                raise CaspioConfigError(
                    f"{name}: columns hint {key}.{prop}={hint[prop]!r} differs from Caspio's "
                    f"{field} ({prop} {ours.get(prop)!r}), so loaded values would differ from "
                    f"Caspio's: remove {prop} from the hint (apply_hints(columns=...))"
                )
        extra = {k: v for k, v in hint.items() if k != "name"}
        merged[field] = {**ours, **extra}  # type: ignore[typeddict-item]
    return merged
