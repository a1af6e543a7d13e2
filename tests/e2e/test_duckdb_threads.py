"""A managed DuckDB pool runs one thread per 64 MB, so an insert writes its rows once.

Each DuckDB thread that inserts new rows builds row groups of its own; threads sharing too
small a pool spill them to a temporary file and write them again (a 1M-row sync wrote 2.9x
the database's bytes under 64 MB and two threads). The check counts the bytes the process
writes while dlt loads, against the size of the file it leaves."""

from __future__ import annotations

import os
import random
from pathlib import Path

import dlt
import pyarrow as pa
import pytest

from pipelines.duckdb_pool import DUCKDB_MEMORY_LIMITS, duckdb_credentials, threads_for_pool

ROWS = 200_000
TEXT_COLUMNS = 7  # 200k rows of 7 x 40 random characters: two threads in 64 MB spill them
TEXT_WIDTH = 40
ROWS_PER_ITEM = 10_000  # the connector's Parquet row groups: DuckDB inserts them in parallel


def _bytes_written() -> int:
    """Bytes this process has passed to write() and pwrite() so far (Linux)."""
    counters = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(counters["wchar"])


def _random_text(rng: random.Random) -> pa.Array:
    """ROWS values of TEXT_WIDTH hex digits: nothing for DuckDB's compression to shrink."""
    data = rng.randbytes(ROWS * TEXT_WIDTH // 2).hex().encode()
    offsets = pa.array(range(0, ROWS * TEXT_WIDTH + 1, TEXT_WIDTH), pa.int32())
    return pa.StringArray.from_buffers(ROWS, offsets.buffers()[1], pa.py_buffer(data))


def test_a_pool_gets_one_thread_per_64_mb_and_no_more_than_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert threads_for_pool("8MB") == 1
    assert threads_for_pool("64MB") == 1
    assert threads_for_pool("128MB") == min(2, cores)
    assert threads_for_pool("2GB") == min(32, cores)
    assert threads_for_pool(" 512 mib ") == min(8, cores)
    with pytest.raises(ValueError, match="not a memory limit"):
        threads_for_pool("80%")


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2 or not Path("/proc/self/io").exists(),
    reason="DuckDB runs one thread on one core, so nothing can spill; counts need Linux",
)
def test_a_large_insert_under_the_first_pool_writes_its_rows_once(tmp_path: Path) -> None:
    rng = random.Random(17)
    table = pa.table(
        {
            "pk_id": pa.array(range(ROWS), pa.int64()),
            **{f"text_{i}": _random_text(rng) for i in range(TEXT_COLUMNS)},
        }
    )
    db_file = tmp_path / "insert.duckdb"
    pipeline = dlt.pipeline(
        "insert_once",
        destination=dlt.destinations.duckdb(credentials=duckdb_credentials(str(db_file))),
        dataset_name="data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    items = [table.slice(start, ROWS_PER_ITEM) for start in range(0, ROWS, ROWS_PER_ITEM)]
    pipeline.extract(dlt.resource(items, name="wide"))
    pipeline.normalize()

    before = _bytes_written()
    pipeline.load()
    written = _bytes_written() - before

    with pipeline.sql_client() as client:
        threads = client.execute_sql("SELECT current_setting('threads')")
        count = client.execute_sql("SELECT count(*) FROM wide")
    assert count is not None and count[0][0] == ROWS
    size = db_file.stat().st_size
    assert written < 1.3 * size, f"wrote {written / size:.2f}x the file's {size} bytes"
    assert threads is not None and threads[0][0] == threads_for_pool(DUCKDB_MEMORY_LIMITS[0])
