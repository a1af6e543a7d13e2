"""A view changes when any of its source rows does, not only the row of its first table."""

from __future__ import annotations

from typing import Any

import duckdb

from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioClient, CaspioCredentials


def test_view_rows_follow_a_change_in_their_second_source_table(caspio_emulator: Any) -> None:
    credentials = CaspioCredentials(
        client_id=caspio_emulator.client_id,
        client_secret=caspio_emulator.client_secret,
        integration_url=caspio_emulator.base_url,
    )
    run_sync(duckdb_file="views.duckdb", credentials=credentials, tables=["Customer_Orders"])
    with duckdb.connect("views.duckdb", read_only=True) as conn:
        customer_id, orders = conn.execute(
            "select customer_id, count(*) from caspio.customer_orders "
            "group by 1 order by 2 desc limit 1"
        ).fetchone()  # type: ignore[misc]
    assert orders > 1

    # Only the Customers row changes (its own Updated stamp); the Orders rows do not.
    with CaspioClient(credentials, token_cache=False) as api:
        api.request(
            "PUT",
            "/tables/Customers/records",
            params={"q.where": f"Customer_ID = {customer_id}"},
            json={"Name": "Renamed Customer Ltd"},
        )

    report = run_sync(
        duckdb_file="views.duckdb", credentials=credentials, tables=["Customer_Orders"]
    )
    # exactly that customer's order rows are re-read: its /fields and one page, not the whole
    # view again
    assert report.rows_by_table == {"customer_orders": orders}
    assert report.api_calls == 2
    with duckdb.connect("views.duckdb", read_only=True) as conn:
        names = conn.execute(
            "select distinct name from caspio.customer_orders where customer_id = ?",
            [customer_id],
        ).fetchall()
        total = conn.execute("select count(*) from caspio.customer_orders").fetchone()
    assert names == [("Renamed Customer Ltd",)]
    assert total == (len(caspio_emulator.table_rows("Customer_Orders")),)
