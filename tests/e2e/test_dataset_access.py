"""Every way a notebook reads a synced dataset through dlt returns what DuckDB itself holds.

The demo account is synced once into a DuckDB file; then each ``pipeline.dataset()`` access a
notebook uses (``dataset.<table>.df() / .arrow() / .fetchall()``, ``dataset("select ...")``
with the same three, ``dataset.row_counts()``) is compared with an independent read of the same
file through the ``duckdb`` module, never through dlt. Each access is tried on the pipeline that
ran the sync and on a fresh pipeline object that only knows the file, the way
``notebooks/revenue_by_segment.ipynb`` opens it.

Why: dlt and DuckDB are released separately, and a combination the version ranges admit can
break one access while the others still work. dlt 1.31 with DuckDB 2.x failed exactly so:
``.arrow()`` raised ``'DuckDBPyConnection' object has no attribute 'fetch_arrow_table'`` while
``.df()`` worked; ``sources/caspio/duckdb_compat.py`` now answers that call, and the
``.arrow()`` cases here fail without it.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from caspio_emulator import DEMO_DATASET, Emulator
from sources.caspio import caspio

DATASET = "caspio"
# The demo account's five objects, as dlt names their tables.
DEMO_TABLES = {"customers", "products", "orders", "order_items", "customer_orders"}
# The notebook's own query, unqualified as a notebook writes it: the dataset resolves the names.
REVENUE_SQL = """
    SELECT date_trunc('month', o.order_date) AS month,
           c.segment,
           sum(o.total) AS revenue,
           count(*) AS orders
    FROM orders o
    JOIN customers c ON c.customer_id = o.customer_id
    GROUP BY 1, 2
    ORDER BY 1, 2
"""
# The same query for DuckDB directly: the schema named, no dlt in between.
REVENUE_SQL_DIRECT = REVENUE_SQL.replace("FROM orders", f"FROM {DATASET}.orders").replace(
    "JOIN customers", f"JOIN {DATASET}.customers"
)


class Synced:
    """The synced file and the two pipeline objects that read it."""

    def __init__(self, db: Path, syncing: dlt.Pipeline, fresh: dlt.Pipeline) -> None:
        self.db = db
        self.pipelines = {"syncing": syncing, "fresh": fresh}

    def direct(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection of the duckdb module itself (no dlt), in UTC as dlt's are:
        timestamps with a zone then come out labelled alike ("UTC", not the machine's zone)."""
        conn = duckdb.connect(str(self.db), read_only=True)
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def data_tables(self) -> list[str]:
        with self.direct() as conn:
            rows = conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_name not like '\\_dlt%' escape '\\' "
                "and table_name <> '_caspio_call_ledger' "
                "order by 1",
                [DATASET],
            ).fetchall()
        return [row[0] for row in rows]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    root = tmp_path_factory.mktemp("dataset_access")
    db = root / "caspio_sync.duckdb"
    with pytest.MonkeyPatch.context() as mp, Emulator(dataset=DEMO_DATASET) as emu:
        # The per-test isolation of tests/conftest.py, for this module-wide sync.
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_data"))
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("SOURCES__CASPIO__TOKEN_CACHE_DIR", str(root / "token_cache"))
        mp.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_ID", emu.client_id)
        mp.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", emu.client_secret)
        mp.setenv("SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", emu.base_url)
        syncing = dlt.pipeline(
            "caspio",
            destination=dlt.destinations.duckdb(str(db)),
            dataset_name=DATASET,
            pipelines_dir=str(root / "pipelines"),
        )
        syncing.run(caspio())
    # What a notebook does later, elsewhere: a new pipeline object with no local state.
    fresh = dlt.pipeline(
        "caspio_notebook",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name=DATASET,
        pipelines_dir=str(root / "notebook_pipelines"),
    )
    yield Synced(db, syncing, fresh)


@pytest.fixture(params=["syncing", "fresh"])
def dataset(request: pytest.FixtureRequest, synced: Synced) -> Any:
    """``pipeline.dataset()`` of the pipeline that synced, then of a fresh one."""
    return synced.pipelines[request.param].dataset()


def test_the_direct_read_sees_the_demo_account(synced: Synced) -> None:
    """Guards the comparisons below: they loop over what the file holds, so it must hold it."""
    tables = synced.data_tables()
    assert set(tables) >= DEMO_TABLES, tables
    with synced.direct() as conn:
        for table in tables:
            count = conn.execute(f'select count(*) from {DATASET}."{table}"').fetchone()
            assert count is not None and count[0] > 0, table


def _direct_frame(synced: Synced, sql: str) -> pd.DataFrame:
    with synced.direct() as conn:
        return conn.sql(sql).df()


def _direct_arrow(synced: Synced, sql: str) -> pa.Table:
    with synced.direct() as conn:
        return conn.sql(sql).to_arrow_table()


def _direct_rows(synced: Synced, sql: str) -> list[tuple[Any, ...]]:
    with synced.direct() as conn:
        return conn.execute(sql).fetchall()


def _select_all(table: str) -> str:
    return f'select * from {DATASET}."{table}"'


def _by_pk(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("pk_id", kind="stable").reset_index(drop=True)


def _rows_by_pk(rows: list[tuple[Any, ...]], columns: list[str]) -> list[tuple[Any, ...]]:
    key = columns.index("pk_id")
    return sorted(rows, key=lambda row: row[key])


def _direct_columns(synced: Synced, table: str) -> list[str]:
    with synced.direct() as conn:
        return [col[0] for col in conn.execute(f"{_select_all(table)} limit 0").description]


def test_table_df(synced: Synced, dataset: Any) -> None:
    for table in synced.data_tables():
        got = getattr(dataset, table).df()
        assert isinstance(got, pd.DataFrame), table
        expected = _direct_frame(synced, _select_all(table))
        pd.testing.assert_frame_equal(_by_pk(got), _by_pk(expected), obj=table)


def test_table_arrow(synced: Synced, dataset: Any) -> None:
    for table in synced.data_tables():
        got = getattr(dataset, table).arrow()
        assert isinstance(got, pa.Table), table
        expected = _direct_arrow(synced, _select_all(table))
        order = [("pk_id", "ascending")]
        assert got.schema.names == expected.schema.names, table
        assert got.num_rows == expected.num_rows, table
        assert got.sort_by(order).equals(expected.sort_by(order)), table


def test_table_arrow_in_chunks(synced: Synced, dataset: Any) -> None:
    """The chunked read is dlt's own code (DuckDB's ``to_arrow_reader``), not the compat one."""
    for table in synced.data_tables():
        chunks = list(getattr(dataset, table).iter_arrow(chunk_size=3))
        got = pa.concat_tables(chunks)
        expected = _direct_arrow(synced, _select_all(table))
        assert all(chunk.num_rows <= 3 for chunk in chunks), table
        order = [("pk_id", "ascending")]
        assert got.sort_by(order).equals(expected.sort_by(order)), table


def test_arrow_reads_warn_nothing_about_dlts_way_of_reading(synced: Synced, dataset: Any) -> None:
    """DuckDB 2 warns about an extra copy on every Arrow read of a DB-API result: advice for
    dlt's code that a notebook user would see under every ``.arrow()`` and can do nothing about."""
    from sources.caspio import duckdb_compat

    table = next(iter(synced.data_tables()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        duckdb_compat.install()  # its filter goes in front of "always", as on import
        getattr(dataset, table).arrow()
        list(getattr(dataset, table).iter_arrow(chunk_size=3))
    assert [str(w.message) for w in caught if "extra copy" in str(w.message)] == []


def test_duckdb_compat_leaves_a_duckdb_with_the_old_name_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On DuckDB 1.x (by its package metadata) nothing is imported or replaced; installing
    again on DuckDB 2 keeps the one replacement."""
    from dlt.destinations.impl.duckdb.sql_client import DuckDBDBApiCursorImpl

    from sources.caspio import duckdb_compat

    installed = DuckDBDBApiCursorImpl.iter_arrow
    assert duckdb_compat.install() is hasattr(installed, "_caspio_compat")
    assert DuckDBDBApiCursorImpl.iter_arrow is installed
    monkeypatch.setattr(duckdb_compat.importlib.metadata, "version", lambda name: "1.5.6")
    assert duckdb_compat.install() is False


def test_duckdb_is_imported_only_with_dlts_duckdb_client() -> None:
    """A sync into another destination does not import DuckDB for the compat; the moment dlt
    imports its DuckDB client, the cursor is patched."""
    code = (
        "import sys\n"
        "import sources.caspio\n"
        "print('duckdb' in sys.modules)\n"
        "from dlt.destinations.impl.duckdb.sql_client import DuckDBDBApiCursorImpl\n"
        "print(getattr(DuckDBDBApiCursorImpl.iter_arrow, '_caspio_compat', False))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]


def test_table_fetchall(synced: Synced, dataset: Any) -> None:
    for table in synced.data_tables():
        columns = _direct_columns(synced, table)
        got = getattr(dataset, table).fetchall()
        expected = _direct_rows(synced, _select_all(table))
        assert len(got) == len(expected), table
        assert _rows_by_pk(got, columns) == _rows_by_pk(expected, columns), table


def test_sql_df(synced: Synced, dataset: Any) -> None:
    got = dataset(REVENUE_SQL).df()
    expected = _direct_frame(synced, REVENUE_SQL_DIRECT)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)


def test_sql_arrow(synced: Synced, dataset: Any) -> None:
    got = dataset(REVENUE_SQL).arrow()
    assert isinstance(got, pa.Table)
    expected = _direct_arrow(synced, REVENUE_SQL_DIRECT)
    assert expected.num_rows > 0
    assert got.equals(expected), (got.schema, expected.schema)


def test_sql_fetchall(synced: Synced, dataset: Any) -> None:
    got = dataset(REVENUE_SQL).fetchall()
    expected = _direct_rows(synced, REVENUE_SQL_DIRECT)
    assert len(expected) > 0
    assert got == expected
    # Currency stays exact on the way out, as DuckDB holds it.
    assert all(isinstance(row[2], Decimal) for row in got)


@pytest.mark.parametrize(
    "fetch",
    [lambda rel: rel.df().itertuples(index=False), lambda rel: rel.fetchall()],
    ids=["df", "fetchall"],
)
def test_row_counts(
    synced: Synced, dataset: Any, fetch: Callable[[Any], Iterator[tuple[Any, ...]]]
) -> None:
    if not hasattr(dataset, "row_counts"):
        pytest.skip("this dlt's dataset has no row_counts()")
    got = {str(name): int(count) for name, count in fetch(dataset.row_counts())}
    expected = {
        table: _direct_rows(synced, f'select count(*) from {DATASET}."{table}"')[0][0]
        for table in synced.data_tables()
    }
    assert got == expected
