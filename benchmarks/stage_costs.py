"""What each unavoidable step of a JSON-to-DuckDB sync costs per 1,000-row page, measured alone.

Run: `.venv/bin/python -m benchmarks.stage_costs [--rows 200000]`. It starts an emulator in
this process, downloads the benchmark's wide table once (bytes kept in memory), then times each
step over the same pages, one step at a time, single-threaded unless the step says otherwise:

1. parse the JSON into Python objects (`orjson.loads`), what any Python client must do at least;
2. the connector's typed decode straight into Arrow columns (`PageDecoder.decode`);
3. write the Arrow pages to Parquet with dlt's settings (snappy, dictionaries), as dlt's
   extract does, and with the connector's (no dictionaries, `parquet_import.PARQUET_OPTIONS`);
4. load each Parquet file into a DuckDB table (as dlt's DuckDB loader does);
5. for comparison, DuckDB loading the same records from JSON by itself, no Python at all (the
   least any JSON-to-DuckDB path costs here, with its own threads);
6. step 2 again in 4 threads, as a sync runs it: the decoder parses outside the GIL.

The download itself is not timed here (the emulator runs in this process and would share its
interpreter); docs/benchmarks.md has the download floor, measured in separate processes. It
prints a Markdown table (ms per page, seconds per 1M rows). The sum of the steps a sync cannot
skip (1 or 2, 3, 4), against that download floor, is the evidence
for what the issue's "3x the download floor" asks of a Python connector on this machine; the
numbers are quoted in docs/benchmarks-analysis.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from caspio_emulator import Emulator
from sources.caspio.page_decoder import PageDecoder
from sources.caspio.parquet_import import PARQUET_OPTIONS
from sources.caspio.schema import ObjectSchema, build_schema

from .caspio_api import CaspioApi

TABLE = "BenchWide"


def _timed(label: str, pages: int, step: Callable[[], object]) -> tuple[str, float]:
    started = time.perf_counter()
    step()
    return label, (time.perf_counter() - started) * 1000 / pages


_DUCKDB_TYPES = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "decimal": "DECIMAL(19,4)",
    "bool": "BOOLEAN",
    "naive_dt": "TIMESTAMP",
    "zoned_dt": "TIMESTAMP",
    "json": "JSON",
}


def _duckdb_columns(schema: ObjectSchema) -> str:
    return (
        "{" + ", ".join(f"'{f.name}': '{_DUCKDB_TYPES[f.value_type]}'" for f in schema.fields) + "}"
    )


def _duckdb_select(schema: ObjectSchema) -> str:
    """The least DuckDB must do to load a page as the connector does: local times to UTC,
    LIST values as text. No checks for odd values, so this is a lower bound, not a loader."""
    out = []
    for f in schema.fields:
        column = f'"{f.name}"'
        if f.value_type == "zoned_dt" and f.tz is not None:
            column = f"timezone('{f.tz.key}', {column})"
        elif f.value_type == "json":
            column = f"CAST({column} AS VARCHAR)"
        out.append(f'{column} AS "{f.name}"')
    return ", ".join(out)


def _duckdb_json_load(table: str, schema: ObjectSchema, ndjson: Path) -> str:
    return (
        f"CREATE TABLE {table} AS SELECT {_duckdb_select(schema)} FROM read_json('{ndjson}',"
        f" format='newline_delimited', columns={_duckdb_columns(schema)})"
    )


def _write_ndjson(bodies: list[bytes], path: Path) -> None:
    """One record per line, cut out of the page bodies without parsing the values."""
    decoder = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])
    with path.open("wb") as out:
        for body in bodies:
            out.write(b"\n".join(decoder.decode(body)["Result"]) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with Emulator(dataset=None, generate={TABLE: args.rows}) as emu:
        api = CaspioApi(emu.base_url, emu.client_id, emu.client_secret)
        session = api.session
        session.headers.update(api.auth_headers())
        url = f"{api.v3}/tables/{TABLE}/records"
        fields = api.fields(TABLE)
        schema = build_schema(TABLE, "tables", fields)
        bodies: list[bytes] = []

        def download() -> None:
            last = 0
            while True:
                params: dict[str, str | int] = {
                    "q.where": f"PK_ID > {last}",
                    "q.orderBy": "PK_ID",
                    "q.pageSize": 1000,
                }
                body = session.get(url, params=params).content
                rows = orjson.loads(body)["Result"]  # only to find the next key
                if not rows:
                    return
                bodies.append(body)
                last = rows[-1]["PK_ID"]
                if len(rows) < 1000:
                    return

        download()
        pages = len(bodies)

        def parse_each() -> None:
            for body in bodies:
                orjson.loads(body)  # dropped at once, as a streaming client would

        results = [_timed("parse JSON into Python objects (orjson.loads)", pages, parse_each)]
        decoder = PageDecoder(schema)
        # warm-up, untimed: pyarrow imports pandas on its first pa.array() of a Python list
        # (~0.45 s, once per process: benchmarks/memory_baseline.py), not a per-page cost
        decoder.decode(bodies[0])
        tables: list[pa.Table] = []
        results.append(
            _timed(
                "typed decode into Arrow columns (PageDecoder)",
                pages,
                lambda: tables.extend(decoder.decode(b) for b in bodies),
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pages.parquet"

            dlt_path = Path(tmp) / "dlt.parquet"

            def write(target: Path, **options: Any) -> Callable[[], None]:
                def run() -> None:
                    with pq.ParquetWriter(target, schema.arrow_schema, **options) as w:
                        for i in range(0, pages, 10):  # 10 pages per write, as in a sync
                            w.write_table(pa.concat_tables(tables[i : i + 10]))

                return run

            results.append(
                _timed(
                    "write Parquet as dlt's writer does (snappy, dictionaries)",
                    pages,
                    write(dlt_path, compression="snappy"),
                )
            )
            results.append(
                _timed(
                    "write Parquet as the connector does into DuckDB (snappy, no dictionaries)",
                    pages,
                    write(path, **PARQUET_OPTIONS),
                )
            )
            con = duckdb.connect(str(Path(tmp) / "db.duckdb"))
            con.execute("SET memory_limit = '128MB'")
            for label, source in (("dlt's", dlt_path), ("the connector's", path)):
                results.append(
                    _timed(
                        f"load {label} Parquet into a DuckDB table",
                        pages,
                        lambda source=source: con.execute(  # type: ignore[misc]
                            f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet('{source}')"
                        ),
                    )
                )
            ndjson = Path(tmp) / "records.ndjson"
            _write_ndjson(bodies, ndjson)  # untimed: only the load below is
            results.append(
                _timed(
                    "DuckDB's own JSON reader, typed columns, into a DuckDB table (no Python)",
                    pages,
                    lambda: con.execute(_duckdb_json_load("j", schema, ndjson)),
                )
            )
            con.close()
        with ThreadPoolExecutor(4) as pool:
            results.append(
                _timed(
                    "typed decode, 4 threads as in a sync (wall time, not CPU)",
                    pages,
                    lambda: list(pool.map(decoder.decode, bodies)),
                )
            )
    print(f"{args.rows:,} rows, {pages} pages of 1,000; one thread unless said; ms per page\n")
    print("| Step | ms per page | s per 1M rows |")
    print("|---|---:|---:|")
    for label, ms in results:
        print(f"| {label} | {ms:.2f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
