"""What every contender shares: the command line, the token call, the result line.

The harness measures time, CPU and memory from outside; a contender only reports what it alone
knows (rows it loaded, rows now in its destination), as one JSON line on stdout prefixed with
`RESULT_PREFIX` so stray prints from libraries can never be mistaken for the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "
V3_ROOT = "/integrations/rest/v3"
PAGE_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class ContenderArgs:
    """One contender invocation: which account, which tables, where to write."""

    base_url: str
    client_id: str
    client_secret: str
    tables: list[str]
    rows: int | None
    out: Path
    cursor_field: str | None
    page_size: int

    @property
    def v3_url(self) -> str:
        return self.base_url.rstrip("/") + V3_ROOT

    @property
    def token_url(self) -> str:
        return self.base_url.rstrip("/") + "/oauth/token"


def parse_args(argv: Sequence[str] | None, description: str) -> ContenderArgs:
    """The command line all contenders accept (the harness builds it once for all of them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", required=True, help="integration URL, no path")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument(
        "--table", action="append", required=True, help="table name; repeat for several"
    )
    parser.add_argument(
        "--rows", type=int, default=None, help="rows per table (the download floor needs it)"
    )
    parser.add_argument("--out", required=True, type=Path, help="working dir; reused = resume")
    parser.add_argument("--cursor-field", default=None, help="TIMESTAMP field for incremental")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    ns = parser.parse_args(argv)
    tables = [t for item in ns.table for t in item.split(",") if t]
    ns.out.mkdir(parents=True, exist_ok=True)
    return ContenderArgs(
        base_url=ns.base_url,
        client_id=ns.client_id,
        client_secret=ns.client_secret,
        tables=tables,
        rows=ns.rows,
        out=ns.out,
        cursor_field=ns.cursor_field,
        page_size=ns.page_size,
    )


def token_form(args: ContenderArgs) -> dict[str, str]:
    """The OAuth client-credentials form body Caspio documents."""
    return {
        "grant_type": "client_credentials",
        "client_id": args.client_id,
        "client_secret": args.client_secret,
    }


def duckdb_table_rows(db_file: Path, dataset: str | None = None) -> dict[str, int]:
    """Rows per user table in a DuckDB file, dlt's own tables and the call ledger excluded.

    Counted in the destination rather than taken from the contender's own bookkeeping, so a
    contender that silently drops pages shows up with the wrong row count. The harness counts
    after the contender has exited, so no contender's time includes the check.
    """
    import duckdb

    con = duckdb.connect(str(db_file), read_only=True)
    try:
        query = (
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' "
            "AND table_name <> '_caspio_call_ledger'"  # the connector's call ledger copy
        )
        if dataset is not None:
            query += f" AND table_schema = '{dataset}'"
        counts: dict[str, int] = {}
        for schema, table in con.execute(query).fetchall():
            row = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
            counts[str(table)] = int(row[0]) if row else 0
        return counts
    finally:
        con.close()


def step_seconds(pipeline: Any) -> dict[str, float]:
    """Seconds per dlt step (extract, normalize, load) from the pipeline's last trace: tells
    whether a slow run was slow fetching, converting or loading."""
    trace = getattr(pipeline, "last_trace", None)
    steps: dict[str, float] = {}
    for step in getattr(trace, "steps", None) or []:
        if step.started_at and step.finished_at:
            elapsed = (step.finished_at - step.started_at).total_seconds()
            steps[step.step] = round(steps.get(step.step, 0.0) + elapsed, 3)
    return steps


def emit(contender: str, rows: int, started: float, **extra: Any) -> None:
    """Print the single result line; `inner_seconds` is the contender's own view (imports
    excluded). Contenders that write DuckDB add `db_file` and `dataset` for the row check."""
    result = {
        "contender": contender,
        "rows": rows,
        "inner_seconds": round(time.perf_counter() - started, 4),
        **extra,
    }
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
