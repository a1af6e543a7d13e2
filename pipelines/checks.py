"""`caspio-sync check`: prove the credentials work and show what a sync would read.

One token call (none with a valid cached token), two listing calls, then per object one
`/fields` call and one 5-row page with `q.getPaginationInfo` for its row count, which also
proves the profile may read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sources.caspio import CaspioClient, CaspioCredentials
from sources.caspio.errors import CaspioApiError, CaspioConfigError
from sources.caspio.incremental import find_cursor
from sources.caspio.options import resolve_names


@dataclasses.dataclass
class ObjectCheck:
    name: str
    kind: str
    rows: int | None
    cursor: str | None
    error: str | None = None


@dataclasses.dataclass
class CheckResult:
    host: str
    objects: list[ObjectCheck]
    api_calls: int

    @property
    def ok(self) -> bool:
        return all(obj.error is None for obj in self.objects)


def check_account(
    credentials: CaspioCredentials, tables: Sequence[str] | None = None
) -> CheckResult:
    with CaspioClient(credentials) as client:
        listing = [(n, "table") for n in client.list_tables()] + [
            (n, "view") for n in client.list_views()
        ]
        chosen = resolve_names(tables, listing) if tables else listing
        results: list[ObjectCheck] = []
        for name, kind in chosen:
            path_kind = "tables" if kind == "table" else "views"
            try:
                cursor = find_cursor(name, client.get_fields(path_kind, name), None)
                page = client.get_records(
                    path_kind,
                    name,
                    {
                        "q.select": "PK_ID",
                        "q.pageSize": 5,
                        "q.pageNumber": 1,
                        "q.getPaginationInfo": "true",
                    },
                )
                rows = int(page.data.get("Pagination", {}).get("TotalCount", 0))
                results.append(ObjectCheck(name, kind, rows, cursor.name if cursor else None))
            except (CaspioApiError, CaspioConfigError) as exc:
                # one unreadable object is reported on its line; the others are still checked
                results.append(ObjectCheck(name, kind, None, None, str(exc)))
        return CheckResult(client.host, results, client.stats.snapshot()["calls"])


def format_check(result: CheckResult) -> str:
    width = max([len(o.name) for o in result.objects] + [6])
    lines = [
        f"Credentials OK for {result.host}.",
        f"{'object'.ljust(width)}  kind   {'rows':>10}  cursor / problem",
    ]
    for obj in result.objects:
        rows = f"{obj.rows:,}" if obj.rows is not None else "-"
        detail = obj.error or (obj.cursor or "(none: replaced in full each run)")
        lines.append(f"{obj.name.ljust(width)}  {obj.kind:<5}  {rows:>10}  {detail}")
    lines.append(f"{len(result.objects)} objects; Caspio API calls spent: {result.api_calls}")
    return "\n".join(lines)
