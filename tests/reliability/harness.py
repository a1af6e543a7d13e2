"""Shared machinery of the reliability suite: a dataset, isolated sync runs, parity checks.

Everything here talks real HTTP to a real emulator and real SQL to a real DuckDB file; nothing is
mocked. The tests in this package and `benchmarks/reliability_report.py` (which runs them N
times and writes docs/reliability.md) both use it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from tests import wire_oracle
from tests.helpers import duckdb_tables
from tests.zone_oracle import fold_times, gap_times

ITEMS = "Items"
NOTES = "Notes"
DATASET_NAME = "caspio"
JUST_RENEWED = 0.25
"""Seconds a token stays valid however often a fault test revokes tokens: the client renews and
replays once, and a revocation between the two (which no real account does) would turn the
replay's stale-token 400 into a query error."""

HOSTILE_NAMES = [
    "O'Brien & Sons",
    "'; DROP TABLE Items; --",
    "' OR 1=1 --",
    "/* comment */",
    "Zoë \u00e9\u00e8 \u65e5\u672c",
    'quote " double',
    "back\\slash",
    "100% _like_ [x]",
]

ITEM_FIELDS: list[dict[str, Any]] = [
    {"Name": "Name", "Type": "STRING"},
    {"Name": "Body", "Type": "TEXT"},
    {"Name": "Qty", "Type": "INTEGER"},
    {"Name": "Price", "Type": "CURRENCY"},
    {"Name": "Weight", "Type": "NUMBER"},
    {"Name": "Active", "Type": "YES/NO"},
    {"Name": "Due", "Type": "DATE/TIME"},
    {
        "Name": "Updated",
        "Type": "TIMESTAMP",
        "OnInsert": True,
        "OnUpdate": True,
        "TimeZone": "Pacific Standard Time",
    },
    # not a cursor: seeded stamps in a European zone, in its DST gap and fold (zone_oracle)
    {"Name": "Stamped", "Type": "TIMESTAMP", "TimeZone": "Central European Standard Time"},
]
STAMPED_VALUES = [
    *gap_times("Central European Standard Time"),
    *fold_times("Central European Standard Time"),
    dt.datetime(2024, 6, 1, 12, 0, 0),
]
ITEM_TYPES = {f["Name"]: f for f in ITEM_FIELDS}
NOTE_FIELDS: list[dict[str, Any]] = [
    {"Name": "Title", "Type": "STRING"},
    {"Name": "Score", "Type": "INTEGER"},
]


def item_row(i: int, rng: random.Random) -> dict[str, Any]:
    """One client-side row of Items (as a client would POST it, plus a seeded timestamp)."""
    return {
        "Name": HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" #{i}",
        "Body": None if i % 7 == 0 else f"line one\nline two {i}",
        "Qty": rng.randint(-1000, 1000),
        "Price": round(rng.uniform(0, 10_000), 4),
        "Weight": round(rng.uniform(0, 100), 3),
        "Active": i % 3 == 0,
        "Due": (dt.datetime(2024, 1, 1) + dt.timedelta(minutes=37 * i)).isoformat(),
        # seeded stamps in the past, three rows per second: ties the (cursor, PK_ID) order
        "Updated": (dt.datetime(2025, 1, 1) + dt.timedelta(seconds=i // 3)).isoformat(),
        "Stamped": STAMPED_VALUES[i % len(STAMPED_VALUES)].isoformat(),
    }


def make_dataset(items: int = 1200, notes: int = 60, seed: int = 5) -> dict[str, Any]:
    """An account with an incremental table (Items: a TIMESTAMP OnUpdate cursor) and a table
    without a cursor (Notes: replaced in full)."""
    rng = random.Random(seed)
    return {
        # fresh credentials per account: the leak test greps every file under tests/ for them
        "account": {
            "host": "c1reliab.caspio.com",
            "client_id": f"reliability-id-{secrets.token_hex(8)}",
            "client_secret": f"reliability-secret-{secrets.token_hex(16)}",
        },
        "tables": {
            ITEMS: {"fields": ITEM_FIELDS, "rows": [item_row(i, rng) for i in range(items)]},
            NOTES: {
                "fields": NOTE_FIELDS,
                "rows": [{"Title": f"note {i}", "Score": i} for i in range(notes)],
            },
        },
    }


@contextmanager
def environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def credential_env(emulator: Any) -> dict[str, str]:
    """The environment a user sets to point the connector at `emulator`."""
    return {
        "SOURCES__CASPIO__CREDENTIALS__CLIENT_ID": emulator.client_id,
        "SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": emulator.client_secret,
        "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL": emulator.base_url,
    }


# ---------------------------------------------------------------------------------------------
# reading the destination back and comparing it with the emulator


def duckdb_rows(path: str | Path, table: str, dataset: str = DATASET_NAME) -> list[dict[str, Any]]:
    """Every row of a destination table, dlt's own columns left out."""
    with duckdb.connect(str(path), read_only=True) as conn:
        cur = conn.execute(f'select * from "{dataset}"."{table.lower()}"')
        names = [d[0] for d in cur.description]
        return [
            {k: v for k, v in zip(names, row, strict=True) if not k.startswith("_dlt")}
            for row in cur.fetchall()
        ]


def duckdb_table_names(path: str | Path, dataset: str = DATASET_NAME) -> set[str]:
    """Data tables in a DuckDB dataset (none if the file or schema does not exist)."""
    if not Path(path).exists():
        return set()
    return set(duckdb_tables(str(path), dataset))


def snake(name: str) -> str:
    """dlt's default column name for a Caspio field name (PK_ID -> pk_id, Updated -> updated)."""
    return name.lower()


class ParityError(AssertionError):
    """The destination differs from the emulator."""


def parity_problems(
    source_rows: Sequence[Mapping[str, Any]],
    dest_rows: Sequence[Mapping[str, Any]],
    ignore_pks: Iterable[Any] = (),
    fields: Mapping[str, Mapping[str, Any]] = ITEM_TYPES,
) -> list[str]:
    """Differences between the emulator's wire rows and the destination rows (empty = parity):
    missing rows, extra rows, duplicated keys and differing values, field by field."""
    problems: list[str] = []
    ignore = {str(pk) for pk in ignore_pks}
    dest_by_pk: dict[str, Mapping[str, Any]] = {}
    for row in dest_rows:
        pk = str(row["pk_id"])
        if pk in dest_by_pk:
            problems.append(f"duplicate PK_ID {pk} in the destination")
        dest_by_pk[pk] = row
    src_by_pk = {str(row["PK_ID"]): row for row in source_rows}
    missing = sorted(set(src_by_pk) - set(dest_by_pk) - ignore, key=_pk_order)
    extra = sorted(set(dest_by_pk) - set(src_by_pk) - ignore, key=_pk_order)
    if missing:
        problems.append(f"{len(missing)} rows missing from the destination: {missing[:10]}")
    if extra:
        problems.append(f"{len(extra)} rows in the destination not in Caspio: {extra[:10]}")
    for pk, src in src_by_pk.items():
        dst = dest_by_pk.get(pk)
        if dst is None:
            continue
        problems += row_problems(src, dst, fields)
        if len(problems) > 30:
            break
    return problems


def row_problems(
    src: Mapping[str, Any],
    dst: Mapping[str, Any],
    fields: Mapping[str, Mapping[str, Any]] = ITEM_TYPES,
) -> list[str]:
    """Field-by-field differences between one wire row and its destination row, typed: the
    value each Caspio type must load as (``tests/wire_oracle.py``), of exactly that type (a
    boolean is not 1.0) and to the microsecond."""
    problems: list[str] = []
    pk = src.get("PK_ID")
    for field, value in src.items():
        column = snake(field)
        if column not in dst:
            problems.append(f"column {column} missing for PK_ID {pk}")
            continue
        spec = None if field == "PK_ID" else dict(fields[field])
        want = wire_oracle.expected(spec, value)
        got = wire_oracle.loaded(dst[column])
        if not wire_oracle.same(want, got):
            problems.append(
                f"PK_ID {pk} {field}: Caspio {value!r} should load as {want!r}, "
                f"destination has {dst[column]!r}"
            )
    return problems


def _pk_order(pk: str) -> tuple[int, str]:
    return (int(pk), "") if pk.isdigit() else (0, pk)


def assert_parity(
    emulator: Any,
    duckdb_file: str | Path,
    tables: Sequence[str] = (ITEMS, NOTES),
    ignore_pks: Mapping[str, Iterable[Any]] | None = None,
    dataset: str = DATASET_NAME,
) -> None:
    """Destination == emulator, value for value, no duplicates, for every table named."""
    problems: list[str] = []
    for table in tables:
        found = duckdb_table_names(duckdb_file, dataset)
        if table.lower() not in found:
            problems.append(f"table {table} not in the destination (has {sorted(found)})")
            continue
        problems += [
            f"{table}: {p}"
            for p in parity_problems(
                emulator.table_rows(table),
                duckdb_rows(duckdb_file, table, dataset),
                (ignore_pks or {}).get(table, ()),
                wire_oracle.field_types(emulator, table),
            )
        ]
    if problems:
        raise ParityError("no parity:\n" + "\n".join(problems[:40]))


# ---------------------------------------------------------------------------------------------
# running syncs


FAST_RETRIES: dict[str, Any] = {"backoff_base": 0.02, "backoff_max": 0.4, "read_timeout": 5.0}
"""Client settings that keep fault tests quick: same algorithm, smaller base delays."""


def credentials_for(emulator: Any, secret: str | None = None) -> Any:
    from sources.caspio import CaspioCredentials

    return CaspioCredentials(
        client_id=emulator.client_id,
        client_secret=secret or emulator.client_secret,
        integration_url=emulator.base_url,
    )


def make_client(emulator: Any, **overrides: Any) -> Any:
    """A CaspioClient for `emulator` (fast backoff unless overridden)."""
    from sources.caspio import CaspioClient

    return CaspioClient(credentials_for(emulator), **{**FAST_RETRIES, **overrides})


def sync(
    emulator: Any,
    workdir: Path,
    client: Any = None,
    tables: Sequence[str] | None = None,
    pipeline_name: str = "caspio",
    **source_options: Any,
) -> Any:
    """One `run_sync` into `workdir/sync.duckdb`; returns the SyncReport."""
    from pipelines.caspio_pipeline import run_sync

    return run_sync(
        destination="duckdb",
        tables=tables,
        pipeline_name=pipeline_name,
        credentials=credentials_for(emulator),
        duckdb_file=str(workdir / "sync.duckdb"),
        pipelines_dir=str(workdir / "pipelines"),
        client=client if client is not None else make_client(emulator),
        source_options=source_options or None,
    )


def fault_counts(emulator: Any) -> dict[str, int]:
    """Faults the emulator injected so far, by kind."""
    counts: dict[str, int] = {}
    for entry in emulator.log:
        if entry.fault:
            counts[entry.fault] = counts.get(entry.fault, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# child processes


CHILD = Path(__file__).resolve().parent / "child_sync.py"


def child_env(emulator: Any, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a scheduled `caspio-sync`-like child: credentials, isolated dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__CASPIO__")}
    env.update(credential_env(emulator))
    env.update(
        {
            "DLT_DATA_DIR": str(workdir / "dlt_data"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
            "SOURCES__CASPIO__TOKEN_CACHE_DIR": str(workdir / "token_cache"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class LineReader:
    """Reads a child's stdout on a thread so the parent can wait for a line with a timeout."""

    def __init__(self, stream: Any) -> None:
        import queue
        import threading

        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float) -> bool:
        """True once a line starting with `prefix` was read; False on EOF or timeout."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if line.startswith(prefix):
                return True
