"""The plain script a notebook user writes: requests in a page loop, a DataFrame, DuckDB.

Deliberately ordinary: one `requests.Session`, `q.pageNumber` paging with `q.pageSize=1000`
(and `q.orderBy=PK_ID`, without which page-number paging skips and repeats rows) until a short
page, `pandas.DataFrame(rows)`, `CREATE TABLE ... AS SELECT * FROM df`. The one concession to
reality: Caspio list fields arrive as JSON objects keyed by item id, whose keys differ from row
to row, so the script stores them as JSON text, as a user would after the first failed load.
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


def fetch_table(session: requests.Session, args: ContenderArgs, table: str) -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        params: dict[str, str | int] = {
            "q.pageSize": args.page_size,
            "q.pageNumber": page,
            "q.orderBy": "PK_ID",
        }
        response = session.get(
            f"{args.v3_url}/tables/{table}/records",
            params=params,
            timeout=120,
        )
        response.raise_for_status()
        batch = response.json()["Result"]
        rows.extend(batch)
        if len(batch) < args.page_size:
            return rows
        page += 1


def to_frame(rows: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, dict)).any():
            frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, dict) else v)
    return frame


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, __doc__ or "")
    started = time.perf_counter()
    session = requests.Session()
    token = session.post(args.token_url, data=token_form(args), timeout=60)
    token.raise_for_status()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    db_file = args.out / "pandas.duckdb"
    con = duckdb.connect(str(db_file))
    loaded = 0
    for table in args.tables:
        df = to_frame(fetch_table(session, args, table))
        loaded += len(df)
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM df')
        del df
    con.close()
    emit("pandas_script", loaded, started, db_file=str(db_file), dataset="main")


if __name__ == "__main__":
    main()
