"""What each unavoidable step of a JSON-to-DuckDB sync costs per 1,000-row page, measured alone.

Run: `.venv/bin/python -m benchmarks.stage_costs [--rows 200000]`. It starts an emulator in
this process, downloads the benchmark's wide table once (bytes kept in memory), then times each
step over the same pages, one step at a time, single-threaded:

1. parse the JSON into Python objects (`orjson.loads`), what any Python client must do at least;
2. the connector's typed decode straight into Arrow columns (`PageDecoder.decode`);
3. write the Arrow pages to Parquet with dlt's settings (snappy), as dlt's extract does;
4. load that Parquet into a DuckDB table (as dlt's DuckDB loader does).

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
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from caspio_emulator import Emulator
from sources.caspio.page_decoder import PageDecoder
from sources.caspio.schema import build_schema

from .caspio_api import CaspioApi

TABLE = "BenchWide"


def _timed(label: str, pages: int, step: Callable[[], object]) -> tuple[str, float]:
    started = time.perf_counter()
    step()
    return label, (time.perf_counter() - started) * 1000 / pages


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

            def write() -> None:
                with pq.ParquetWriter(path, schema.arrow_schema, compression="snappy") as w:
                    for i in range(0, pages, 10):  # the connector yields 10 pages at a time
                        w.write_table(pa.concat_tables(tables[i : i + 10]))

            results.append(_timed("write Parquet (snappy, 10 pages per write)", pages, write))
            con = duckdb.connect(str(Path(tmp) / "db.duckdb"))
            con.execute("SET memory_limit = '128MB'")
            results.append(
                _timed(
                    "load the Parquet into a DuckDB table",
                    pages,
                    lambda: con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')"),
                )
            )
            con.close()
    print(f"{args.rows:,} rows, {pages} pages of 1,000; one thread; ms per page, s per 1M rows\n")
    print("| Step | ms per page | s per 1M rows |")
    print("|---|---:|---:|")
    for label, ms in results:
        print(f"| {label} | {ms:.2f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
