"""What a run will read for one object, and why: dlt-free, shared by the source and ``plan``.

From the object's current ``/fields``, its stored state and its options, ``plan_object`` decides
the cursor filter, the PK start, the selected fields and the write disposition, after checking
the state against the table's design: a field added (or a stamp's zone changed) makes the run
read the table in full once, and a field whose loaded column type changed stops the run before
anything is read.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .catalog import Catalog
from .design import DesignChanges, Retyped, design_changes
from .errors import CaspioConfigError, CaspioDesignChangeError
from .filters import and_, identifier
from .incremental import Cursor, cursor_filter, find_cursor
from .lineage import forget_loaded
from .options import TableOptions, is_glob, resolve_names
from .schema import VIEWS, ObjectSchema, build_schema
from .settings import PK_FIELD, ObjectKind, object_kind
from .view_pager import keys_remembered_refused


@dataclasses.dataclass(frozen=True)
class ObjectPlan:
    """What one run does for one object."""

    name: str
    kind: ObjectKind
    schema: ObjectSchema
    cursor: Cursor | None
    write_disposition: str
    primary_key: str | tuple[str, ...]
    select: str | None
    where: str | None
    start_after: int | None
    previous_mark: str | None
    """The stored cursor mark this run continues from (``None``: no incremental filter)."""
    design: DesignChanges = DesignChanges()
    full_read_reason: str | None = None
    """Why an object with loaded state is read in full this run (``None``: it is not)."""
    read_with: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The options that decide which rows and columns are read (kept in state: a mark is only
    good for the same ``where`` and ``fields``)."""
    view_keys_refused: bool = False
    """A view whose ``_PK_ID_`` keys an earlier run found refused (``view_pager.py``): read and
    priced by its string ``PK_ID`` without spending the refused call again."""

    @property
    def reads_everything(self) -> bool:
        """A merge or append run without any filter (first run, new cursor, full read) reads
        every row: there is nothing to merge with, so it replaces the table. dlt's merge would
        stage the rows and deduplicate them with a window over the whole table."""
        if self.where is not None:
            return False
        if self.write_disposition == "append":
            return self.start_after is None
        return self.write_disposition == "merge"

    @property
    def incremental(self) -> bool:
        return self.previous_mark is not None or self.start_after is not None


READ_WITH_KEY = "read_with"


def read_with(options: TableOptions) -> dict[str, Any]:
    """What of an object's options decides which rows and columns a mark covers."""
    fields = sorted(f.lower() for f in options.fields) if options.fields is not None else None
    return {"where": options.where, "fields": fields}


def _describe_read(reading: Mapping[str, Any]) -> str:
    where, fields = reading.get("where"), reading.get("fields")
    return (f"where {where!r}" if where else "no where") + (
        f", fields {', '.join(fields)}" if fields else ", all fields"
    )


def retyped_error(name: str, retyped: Sequence[Retyped]) -> CaspioDesignChangeError:
    what = ", ".join(
        f"{r.name} from {r.old} to {r.new} (column {r.old_column} -> {r.new_column})"
        for r in retyped
    )
    return CaspioDesignChangeError(
        f"{name}: field type changed in Caspio: {what}; nothing was loaded. Reload just this "
        f"table with the new type: caspio-sync run --tables {name} --full-refresh "
        f"(Python: pipeline.run(caspio(tables=[{name!r}]), refresh='drop_resources'))"
    )


def plan_object(
    name: str,
    kind: ObjectKind,
    fields: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any],
    options: TableOptions,
    stale: str | None = None,
) -> ObjectPlan:
    """The plan of one object from its current ``fields`` and stored ``state``.

    ``stale`` is why the state does not describe the destination (``lineage.stale_reason``):
    the object is then read as on its first run."""
    loaded = dict(state)
    design = DesignChanges()
    reading = read_with(options)
    if stale is None and loaded.get("fields") is not None:
        previous = loaded.get(READ_WITH_KEY)
        if previous is not None and previous != reading:
            stale = (
                f"its rows were read with other table_options ({_describe_read(previous)}; "
                f"now {_describe_read(reading)}), so its mark does not cover what is read now"
            )
    if stale is not None:
        forget_loaded(loaded)
    elif loaded.get("fields") is not None:
        design = design_changes(loaded["fields"], fields, options.fields)
        if design.retyped:
            raise retyped_error(name, design.retyped)
        if design.needs_full_read:
            stale = design.describe()
            forget_loaded(loaded)
    cursor = None if options.no_cursor else find_cursor(name, fields, options.cursor_field)
    disposition = options.write_disposition or ("merge" if cursor else "replace")
    select_names: list[str] | None = None
    if options.fields is not None:
        select_names = list(options.fields)
        for field in cursor.all if cursor else ():
            if field.name.lower() not in {f.lower() for f in select_names}:
                select_names.append(field.name)
    schema = build_schema(name, kind, fields, select_names)
    where_cursor: str | None = None
    start_after: int | None = None
    mark: str | None = None
    if disposition == "append":
        if kind == VIEWS:
            raise CaspioConfigError(
                f"write_disposition 'append' reads by integer PK_ID and {name} is a view: use "
                "merge (with a cursor) or replace in table_options"
            )
        last = loaded.get("last_pk")
        start_after = last if isinstance(last, int) else None
    elif disposition == "merge" and cursor is not None:
        saved = loaded.get("cursor") or {}
        mark = saved.get("value") if saved.get("field") == cursor.name else None
        where_cursor = cursor_filter(cursor, mark, options.lag)
    select = None
    if select_names is not None:
        select = ",".join(identifier(n) for n in [PK_FIELD, *select_names])
    return ObjectPlan(
        name=name,
        kind=kind,
        schema=schema,
        cursor=cursor if disposition == "merge" else None,
        write_disposition=disposition,
        primary_key=options.primary_key or PK_FIELD,
        select=select,
        where=and_(where_cursor, options.where),
        start_after=start_after,
        previous_mark=mark,
        design=design,
        full_read_reason=stale,
        read_with=reading,
        view_keys_refused=kind == VIEWS and keys_remembered_refused(loaded, fields),
    )


def select_objects(
    catalog: Catalog, tables: Sequence[str] | None
) -> list[tuple[str, ObjectKind | None]]:
    """``(name, kind)`` of the objects a run reads, each once; ``kind`` is ``None`` for a name
    given exactly (its kind comes from state, or from one listing on its first run)."""
    if tables is None:
        selected: list[tuple[str, ObjectKind | None]] = list(catalog.objects())
    elif any(is_glob(t) for t in tables):
        selected = list(resolve_names(list(tables), catalog.objects()))
    else:
        selected = [(t, None) for t in tables]
    seen: set[str] = set()
    unique = []
    for name, kind in selected:
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append((name, kind))
    return unique


def resolve_kind(
    name: str, state: Mapping[str, Any], hint: ObjectKind | None, catalog: Catalog
) -> ObjectKind:
    """Table or view: from the object's state, the listing that selected it, or one listing."""
    return object_kind(state.get("kind")) or hint or catalog.kind_of(name)
