"""The contenders: one module each, runnable as `python -m benchmarks.contenders.<name>`.

Each prints exactly one JSON result line (see `common.emit`) so the harness never has to trust
in-process timing: wall time, CPU time and peak RSS are measured from outside by the harness.
`DESCRIPTIONS` is what the report prints about each one's configuration; keep it next to the
code it describes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Description:
    """How the report names a contender and what configuration it says it ran."""

    label: str
    configuration: str


DESCRIPTIONS: dict[str, Description] = {
    "connector": Description(
        "connector",
        "`pipelines.caspio_pipeline.run_sync` (what `caspio-sync run` calls) into a fresh DuckDB "
        "file with the connector's defaults; token cache in a benchmark-private directory "
        "shared across runs. Pages by key ranges read concurrently, and ends as the "
        "`caspio-sync` executable does (`pipelines.process.exit_process`).",
    ),
    "rest_api_parquet": Description(
        "rest_api + Parquet (tuned peer)",
        "dlt's `rest_api` source as a dlt user who tunes writes it: "
        '`pipeline.run(source, loader_file_format="parquet")` and `parallelized: True` on every '
        "resource; otherwise as below. The headline peer.",
    ),
    "rest_api_generic": Description(
        "rest_api, default",
        "dlt's `rest_api` source with dlt's defaults (DuckDB's default `insert_values` file "
        "format, resources one after another): `OAuth2ClientCredentials`, `PageNumberPaginator("
        'base_page=1, page_param="q.pageNumber", total_path=None)` (stops at the first empty '
        'page), `data_selector="Result"`, `q.pageSize=1000`, `q.orderBy=PK_ID`, an incremental '
        "cursor in `q.where` via `{incremental.start_value}`, merge on `PK_ID`, into DuckDB.",
    ),
    "pandas_keyset": Description(
        "pandas, key paging",
        "`requests.Session`; asks for `q.where=PK_ID > <last PK_ID read>`, `q.orderBy=PK_ID`, "
        "`q.pageSize=1000` (pages by key, as the connector does) until a short page; "
        "`pandas.DataFrame`, `CREATE TABLE ... AS SELECT * FROM df` in DuckDB.",
    ),
    "pandas_script": Description(
        "pandas, page numbers",
        "`requests.Session`; asks for `q.pageNumber=1, 2, 3, ...` with `q.pageSize=1000` and "
        "`q.orderBy=PK_ID` until a short page, so the server sorts and skips "
        "`(pageNumber-1) x 1000` rows for every page (its cost grows with the depth: see "
        "Emulator CPU s); `pandas.DataFrame`, `CREATE TABLE ... AS SELECT * FROM df`.",
    ),
    "download_floor": Description(
        "download floor",
        "every page on one keep-alive `http.client` connection, by key (`q.where=PK_ID > last`), "
        'bytes discarded (rows counted by a byte search for `"PK_ID"`, no parsing). '
        "Not a peer: no client that stores the rows can beat it.",
    ),
}

CONTENDERS: tuple[str, ...] = tuple(DESCRIPTIONS)
