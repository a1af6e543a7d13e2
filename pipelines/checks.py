"""`caspio-sync check`: prove the credentials work, validate every setting against the account,
and show what a sync would read.

One token call (none with a valid cached token), the listing calls a run makes, then per object
one `/fields` call and one 5-row page with `q.getPaginationInfo` for its row count, which also
proves the profile may read it. The objects are the ones the run would read (`tables`,
`include_views`); every `table_options` entry must name a table or view that exists (or be a
glob that matches one) and every field it names must exist there, or the check fails listing
each problem.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from sources.caspio import (
    TABLES,
    CaspioApiError,
    CaspioClient,
    CaspioConfigError,
    CaspioSourceConfiguration,
    Catalog,
    TableOptionsMap,
    configured_window,
    plan_object,
    resolve_kind,
    select_objects,
    validate_table_options,
)

from .caspio_pipeline import make_client, source_settings

GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass
class ObjectCheck:
    name: str
    label: str
    """``table`` or ``view``, as the report shows it."""
    rows: int | None
    cursor: str | None
    error: str | None = None


@dataclasses.dataclass
class CheckResult:
    host: str
    objects: list[ObjectCheck]
    api_calls: int
    problems: list[str] = dataclasses.field(default_factory=list)
    """Settings that do not fit the account (not tied to one readable object)."""

    @property
    def ok(self) -> bool:
        return not self.problems and all(obj.error is None for obj in self.objects)


def _unmatched_options(settings: CaspioSourceConfiguration, names: Sequence[str]) -> list[str]:
    """``table_options`` keys that name no object of the account."""
    lowered = [n.lower() for n in names]
    problems = []
    for key in settings.table_options or {}:
        pattern = key.lower()
        if any(c in GLOB_CHARS for c in key):
            hit = any(fnmatch.fnmatchcase(n, pattern) for n in lowered)
        else:
            hit = pattern in lowered
        if not hit:
            problems.append(
                f"table_options.{key}: no table or view of this account matches {key!r} "
                f"(objects: {', '.join(sorted(names)) or 'none'})"
            )
    return problems


def check_account(
    settings: CaspioSourceConfiguration, client: CaspioClient | None = None
) -> CheckResult:
    """Check the account and every setting; ``settings`` from ``source_settings()``."""
    client = client or make_client(settings)
    problems: list[str] = []
    valid: dict[str, Mapping[str, Any]] = {}
    for key, entry in (settings.table_options or {}).items():
        try:
            valid.update(validate_table_options({key: entry}))
        except CaspioConfigError as exc:
            problems.append(str(exc))
    parsed = TableOptionsMap(valid)
    everything = Catalog(client, include_views=True)
    all_objects = everything.objects()
    catalog = everything if settings.include_views else Catalog(client, include_views=False)
    problems += _unmatched_options(settings, [name for name, _ in all_objects])
    results: list[ObjectCheck] = []
    for name, kind_hint in select_objects(catalog, settings.tables):
        kind = resolve_kind(name, {}, kind_hint, catalog)
        label = "table" if kind == TABLES else "view"
        try:
            fields = client.get_fields(kind, name)
            plan = plan_object(name, kind, fields, {}, parsed.for_object(name))
            configured_window(plan, parsed.for_object(name))  # a window needs a cursor
            page = client.get_records(
                kind,
                name,
                {
                    "q.select": "PK_ID",
                    "q.pageSize": 5,
                    "q.pageNumber": 1,
                    "q.getPaginationInfo": "true",
                },
            )
            rows = int(page.data.get("Pagination", {}).get("TotalCount", 0))
            cursor = plan.cursor.name if plan.cursor else None
            results.append(ObjectCheck(name, label, rows, cursor))
        except (CaspioApiError, CaspioConfigError) as exc:
            # one unreadable object is reported on its line; the others are still checked
            results.append(ObjectCheck(name, label, None, None, str(exc)))
    return CheckResult(client.host, results, client.stats.snapshot()["calls"], problems)


def run_check(
    tables: Sequence[str] | None = None,
    pipeline_name: str = "caspio",
    client: CaspioClient | None = None,
) -> CheckResult:
    """The ``caspio-sync check`` entry point: the settings ``run`` would use."""
    settings = source_settings(pipeline_name, tables, client.credentials if client else None)
    return check_account(settings, client)


def format_check(result: CheckResult) -> str:
    width = max([len(o.name) for o in result.objects] + [6])
    lines = [
        f"Credentials OK for {result.host}.",
        f"{'object'.ljust(width)}  kind   {'rows':>10}  cursor / problem",
    ]
    for obj in result.objects:
        rows = f"{obj.rows:,}" if obj.rows is not None else "-"
        detail = obj.error or (obj.cursor or "(none: replaced in full each run)")
        lines.append(f"{obj.name.ljust(width)}  {obj.label:<5}  {rows:>10}  {detail}")
    lines.extend(f"problem: {problem}" for problem in result.problems)
    lines.append(f"{len(result.objects)} objects; Caspio API calls spent: {result.api_calls}")
    return "\n".join(lines)
