"""A view's ``_PK_ID_<Table>`` fields (README section 3, docs/emulator.md guess 48): named in
q.select / q.where / q.orderBy, never listed by /fields nor returned by a default answer, and
a keyset page over them is an index range scan."""

from __future__ import annotations

from typing import Any

from caspio_emulator import Emulator
from caspio_emulator.sql import compile_query

from .conftest import Api

VIEW = "/views/Customer_Orders"


def records(api: Api, path: str, **params: Any) -> Any:
    r = api.get(path + "/records", **params)
    assert r.status_code == 200, r.text
    return r.json()["Result"]


def test_keys_are_selectable_integers_matching_the_view_pk_id(api: Api) -> None:
    rows = records(
        api, VIEW, **{"q.select": "_PK_ID_Orders, _pk_id_customers AS c, PK_ID", "q.limit": 50}
    )
    assert list(rows[0]) == ["_PK_ID_Orders", "c", "PK_ID"]
    for row in rows:
        assert isinstance(row["_PK_ID_Orders"], int) and isinstance(row["c"], int)
        assert row["PK_ID"] == f"{row['_PK_ID_Orders']},{row['c']}"


def test_keys_are_not_listed_nor_in_default_answers(api: Api) -> None:
    names = [f["Name"] for f in api.get(VIEW + "/fields").json()["Result"]]
    assert not any(n.lower().startswith("_pk_id") for n in names)
    r = api.get(VIEW + "/fields/_PK_ID_Orders")
    assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound"
    for params in ({}, {"q.select": "*"}, {"q.pageSize": 5, "q.pageNumber": 2}):
        row = records(api, VIEW, **params)[0]
        assert not any(k.lower().startswith("_pk_id") for k in row), row


def test_keyset_paging_a_view_by_a_source_key_is_exact(api: Api, shared_emu: Emulator) -> None:
    everything = shared_emu.table_rows("Customer_Orders")
    seen: list[str] = []
    last = 0
    while True:
        page = records(
            api,
            VIEW,
            **{
                "q.where": f"_PK_ID_Orders > {last}",
                "q.orderBy": "_PK_ID_Orders",
                "q.select": "_PK_ID_Orders, PK_ID, *",
                "q.pageSize": 250,
            },
        )
        seen += [r["PK_ID"] for r in page]
        if len(page) < 250:
            break
        last = page[-1]["_PK_ID_Orders"]
        assert [r["_PK_ID_Orders"] for r in page] == sorted(r["_PK_ID_Orders"] for r in page)
    assert len(everything) > 1000
    assert sorted(seen, key=lambda p: int(p.split(",")[0])) == [r["PK_ID"] for r in everything]


def test_keys_filter_sort_and_convert_like_integers(api: Api) -> None:
    desc = records(
        api,
        VIEW,
        **{"q.where": "_PK_ID_Customers = '3'", "q.orderBy": "_PK_ID_Orders DESC"},
    )
    assert desc and all(r["PK_ID"].endswith(",3") for r in desc)
    keys = [int(r["PK_ID"].split(",")[0]) for r in desc]
    assert keys == sorted(keys, reverse=True)
    n = records(api, VIEW, **{"q.select": "COUNT(_PK_ID_Orders) AS n"})[0]["n"]
    assert n == records(api, VIEW, **{"q.select": "COUNT(PK_ID) AS n"})[0]["n"]
    grouped = records(
        api,
        VIEW,
        **{
            "q.select": "_PK_ID_Customers, COUNT(*) AS n",
            "q.groupBy": "_PK_ID_Customers",
            "q.limit": 1000,
        },
    )
    assert sum(g["n"] for g in grouped) == n


def test_only_the_views_own_tables_have_keys(api: Api) -> None:
    for path, name in ((VIEW, "_PK_ID_Products"), ("/tables/Orders", "_PK_ID_Orders")):
        r = api.get(path + "/records", **{"q.where": f"{name} > 1"})
        assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound", r.text


def test_a_view_keyset_page_is_a_range_scan(shared_emu: Emulator) -> None:
    """``_PK_ID_Orders > n ORDER BY _PK_ID_Orders`` reads Orders by rowid range and finds each
    row's customer through the join index: no scan of the join, no sort."""
    store = shared_emu.store
    view = store.view("Customer_Orders")
    assert view is not None
    comp = compile_query(
        view.scope,
        store.resolve_scope,
        store.now_text,
        where="_PK_ID_Orders > 700",
        order_by="_PK_ID_Orders",
    )
    assert comp.selectivity_probe_sql(1001) is None  # a key range needs no probe
    sql, params = comp.json_sql(1000, 0)
    plan = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "INTEGER PRIMARY KEY (rowid>?)" in plan and "B-TREE" not in plan, plan
    assert "USING INDEX ixj_tbl_Customers_Customer_ID" in plan, plan


def test_join_indexes_survive_a_design_change(fresh_api: Api) -> None:
    emu = fresh_api.emu
    emu.add_field("Customers", {"Name": "Tier", "Type": "STRING"})
    names = {
        r[0] for r in emu.store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"ixj_tbl_Customers_Customer_ID", "ixj_tbl_Orders_Customer_ID"} <= names
    rows = records(fresh_api, VIEW, **{"q.select": "_PK_ID_Customers", "q.limit": 1})
    assert rows == [{"_PK_ID_Customers": rows[0]["_PK_ID_Customers"]}]
