"""The plain script a notebook user writes: requests in a page loop, a DataFrame, DuckDB.

Deliberately ordinary: one `requests.Session`, `q.pageNumber` paging with `q.pageSize=1000`
(and `q.orderBy=PK_ID`, without which page-number paging skips and repeats rows) until a short
page, `pandas.DataFrame(rows)`, `CREATE TABLE ... AS SELECT * FROM df`. Page N makes the server
sort and skip (N-1) x 1000 rows, so deep pages cost it more; `pandas_keyset` is the same script
paging by key. The one concession to reality: Caspio list fields arrive as JSON objects keyed
by item id, whose keys differ from row to row, so the script stores them as JSON text, as a
user would after the first failed load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd
import requests

from .common import ContenderArgs, emit, parse_args, token_form


def _get_page(
    session: requests.Session, args: ContenderArgs, table: str, params: dict[str, str | int]
) -> list[Any]:
    response = session.get(f"{args.v3_url}/tables/{table}/records", params=params, timeout=120)
    response.raise_for_status()
    return list(response.json()["Result"])


def fetch_by_page_number(session: requests.Session, args: ContenderArgs, table: str) -> list[Any]:
    """`q.pageNumber=1, 2, ...` until a short page."""
    rows: list[Any] = []
    page = 1
    while True:
        params: dict[str, str | int] = {
            "q.pageSize": args.page_size,
            "q.pageNumber": page,
            "q.orderBy": "PK_ID",
        }
        batch = _get_page(session, args, table, params)
        rows.extend(batch)
        if len(batch) < args.page_size:
            return rows
        page += 1


def fetch_by_key(session: requests.Session, args: ContenderArgs, table: str) -> list[Any]:
    """`q.where=PK_ID > <last PK_ID read>` in `PK_ID` order until a short page."""
    rows: list[Any] = []
    last = 0
    while True:
        params: dict[str, str | int] = {
            "q.pageSize": args.page_size,
            "q.where": f"PK_ID > {last}",
            "q.orderBy": "PK_ID",
        }
        batch = _get_page(session, args, table, params)
        rows.extend(batch)
        if len(batch) < args.page_size:
            return rows
        last = int(batch[-1]["PK_ID"])


def to_frame(rows: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, dict)).any():
            frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, dict) else v)
    return frame


def run(argv: Sequence[str] | None, contender: str, by_key: bool) -> None:
    """Every table into one DuckDB file; `by_key` picks the paging."""
    args = parse_args(argv, __doc__ or "")
    started = time.perf_counter()
    fetch = fetch_by_key if by_key else fetch_by_page_number
    session = requests.Session()
    token = session.post(args.token_url, data=token_form(args), timeout=60)
    token.raise_for_status()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    db_file = args.out / "pandas.duckdb"
    con = duckdb.connect(str(db_file))
    loaded = 0
    for table in args.tables:
        df = to_frame(fetch(session, args, table))
        loaded += len(df)
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM df')
        del df
    con.close()
    emit(contender, loaded, started, db_file=str(db_file), dataset="main")


def main(argv: Sequence[str] | None = None) -> None:
    run(argv, "pandas_script", by_key=False)


if __name__ == "__main__":
    main()
