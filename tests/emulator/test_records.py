"""Records GET: every q.* parameter, its documented limits, and README section 3/4 quirks."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api


def recs(api: Api, path: Any = "/tables/Big/records", **params: Any) -> list[dict]:
    r = api.get(path, **params)
    assert r.status_code == 200, r.text
    return r.json()["Result"]


def test_limit_defaults_to_100_and_caps_at_1000(api: Api) -> None:
    assert len(recs(api)) == 100
    assert len(recs(api, **{"q.limit": 7})) == 7
    assert len(recs(api, **{"q.limit": 5000})) == 1000


def test_limit_is_ignored_when_a_page_parameter_is_present(api: Api) -> None:
    assert len(recs(api, **{"q.limit": 7, "q.pageNumber": 1})) == 25
    assert len(recs(api, **{"q.limit": 7, "q.pageSize": 40})) == 40


@pytest.mark.parametrize("size", ["3", "4", "1001", "abc", "0"])
def test_page_size_outside_5_to_1000_is_incorrect_query_parameter(api: Api, size: str) -> None:
    r = api.get("/tables/Big/records", **{"q.pageSize": size})
    assert r.status_code == 400
    body = r.json()
    assert body["Code"] == "IncorrectQueryParameter"
    assert body["RequestId"] == r.headers["X-Caspio-Request-ID"]
    assert body["Resource"].endswith("/integrations/rest/v3/tables/Big/records")


def test_page_size_bounds_are_inclusive(api: Api) -> None:
    assert len(recs(api, **{"q.pageSize": 5})) == 5
    assert len(recs(api, **{"q.pageSize": 1000})) == 1000


def test_page_past_the_end_is_empty_and_pagination_counts_matches(api: Api) -> None:
    r = api.get(
        "/tables/Big/records",
        **{"q.pageSize": 1000, "q.pageNumber": 4, "q.getPaginationInfo": "true"},
    )
    assert r.json() == {
        "Result": [],
        "Pagination": {"TotalCount": 2500, "PageNumber": 4, "PageSize": 1000},
    }
    assert api.get("/tables/Big/records", **{"q.pageNumber": 500}).json() == {"Result": []}
    r = api.get(
        "/tables/Big/records",
        **{"q.where": "PK_ID > 2000", "q.pageSize": 100, "q.getPaginationInfo": "true"},
    )
    assert r.json()["Pagination"]["TotalCount"] == 500


def test_no_pagination_object_unless_asked(api: Api) -> None:
    assert "Pagination" not in api.get("/tables/Big/records", **{"q.pageSize": 5}).json()


def test_parameter_names_and_object_names_are_case_insensitive(api: Api) -> None:
    rows = recs(api, "/tables/big/records", **{"Q.PAGESIZE": 5, "q.WHERE": "pk_id < 3"})
    assert [r["PK_ID"] for r in rows] == [1, 2]
    assert api.get("/tables/CUSTOMERS").json()["Result"]["Name"] == "Customers"


def test_keyset_paging_to_the_end(api: Api) -> None:
    seen: list[int] = []
    last = 0
    while True:
        page = recs(api, **{"q.where": f"PK_ID > {last}", "q.orderBy": "PK_ID", "q.pageSize": 1000})
        seen += [r["PK_ID"] for r in page]
        if len(page) < 1000:
            break
        last = page[-1]["PK_ID"]
    assert seen == list(range(1, 2501))


def test_select_where_order_and_aliases(api: Api) -> None:
    rows = recs(
        api,
        "/tables/Customers/records",
        **{
            "q.select": "PK_ID, Name AS n",
            "q.where": "Segment = 'enterprise'",
            "q.orderBy": "n DESC",
        },
    )
    assert rows and set(rows[0]) == {"PK_ID", "n"}
    assert [r["n"] for r in rows] == sorted((r["n"] for r in rows), key=str.casefold, reverse=True)


def test_aggregates_and_group_by(api: Api) -> None:
    (row,) = recs(
        api,
        "/tables/Orders/records",
        **{
            "q.select": "COUNT(PK_ID) AS n, MIN(Order_Date) AS first, "
            "MAX(Total) AS top, SUM(Total) AS s"
        },
    )
    assert row["n"] == 1400 and row["first"].startswith("2023-07")
    assert isinstance(row["top"], float) and row["s"] > row["top"]
    groups = recs(
        api,
        "/tables/Customers/records",
        **{"q.select": "Segment, COUNT(PK_ID) AS n", "q.groupBy": "Segment", "q.orderBy": "n DESC"},
    )
    assert sum(g["n"] for g in groups) == 320 and len(groups) == 4


def test_date_literals_are_normalised(api: Api) -> None:
    a = recs(
        api,
        "/tables/Orders/records",
        **{"q.where": "Order_Date >= '2024-01-31 10:00'", "q.limit": 1000},
    )
    b = recs(
        api,
        "/tables/Orders/records",
        **{"q.where": "Order_Date >= '2024-01-31T10:00:00'", "q.limit": 1000},
    )
    c = recs(
        api,
        "/tables/Orders/records",
        **{"q.where": "Order_Date >= '01/31/2024 10:00 AM'", "q.limit": 1000},
    )
    assert a == b == c and a
    assert all(r["Order_Date"] >= "2024-01-31T10:00:00" for r in a)
    r = api.get("/tables/Orders/records", **{"q.where": "Order_Date > 'yesterday'"})
    assert r.status_code == 400 and r.json()["Code"] == "SqlServerError"


def test_wire_values(api: Api) -> None:
    (c,) = recs(api, "/tables/Customers/records", **{"q.where": "PK_ID = 97"})
    assert c["Active"] in (True, False)
    assert isinstance(c["Credit_Limit"], float)
    assert "Portal_Password" not in c  # PASSWORD never returned, skipped by *
    assert c["Signup_Date"] and len(c["Signup_Date"]) == 19 and "T" in c["Signup_Date"]
    assert len(c["Notes"]) > 10000  # Text(64000)
    tagged = recs(api, "/tables/Customers/records", **{"q.where": "PK_ID <= 40"})
    lists = [r["Tags"] for r in tagged if r["Tags"]]
    assert lists and all(isinstance(v, dict) for v in lists)
    assert all(k.isdigit() for v in lists for k in v)
    assert any(r["Notes"] is None for r in tagged)  # empty values are null


def test_yes_no_compares_with_1_and_0(api: Api) -> None:
    yes = recs(api, "/tables/Customers/records", **{"q.where": "Active = 1", "q.limit": 1000})
    no = recs(api, "/tables/Customers/records", **{"q.where": "Active = 0", "q.limit": 1000})
    assert yes and no and len(yes) + len(no) == 320
    assert all(r["Active"] is True for r in yes)


def test_text_comparison_is_case_insensitive(api: Api) -> None:
    a = recs(
        api, "/tables/Customers/records", **{"q.where": "Segment = 'CONSUMER'", "q.limit": 1000}
    )
    b = recs(
        api, "/tables/Customers/records", **{"q.where": "segment = 'consumer   '", "q.limit": 1000}
    )
    c = recs(
        api, "/tables/Customers/records", **{"q.where": "Segment LIKE 'con%'", "q.limit": 1000}
    )
    d = recs(
        api,
        "/tables/Customers/records",
        **{"q.where": "Segment LIKE '[c]onsume_'", "q.limit": 1000},
    )
    assert a and a == b == c == d


def test_in_between_null_not(api: Api) -> None:
    rows = recs(api, **{"q.where": "PK_ID IN (1, 2, 3) OR PK_ID BETWEEN 10 AND 12", "q.limit": 50})
    assert [r["PK_ID"] for r in rows] == [1, 2, 3, 10, 11, 12]
    nulls = recs(api, **{"q.where": "Notes IS NULL AND NOT PK_ID > 100"})
    assert nulls and all(r["Notes"] is None for r in nulls)


def test_between_binds_a_left_operand_literal_first(api: Api) -> None:
    # the left operand is emitted (and its literals bound) before low and high: this once
    # bound 101, 103, 100 to "PK_ID + ? BETWEEN ? AND ?" and matched nothing
    rows = recs(api, **{"q.where": "PK_ID + 100 BETWEEN 101 AND 103"})
    assert [r["PK_ID"] for r in rows] == [1, 2, 3]


def test_case_and_iif(api: Api) -> None:
    rows = recs(
        api,
        **{
            "q.select": "PK_ID, CASE WHEN PK_ID < 3 THEN 'low' WHEN PK_ID = 3 THEN 'three' "
            "ELSE 'high' END AS band, CASE PK_ID WHEN 1 THEN 10 END AS one, "
            "IIF(PK_ID > 1, 'yes', 'no') AS more",
            "q.where": "CASE WHEN PK_ID % 2 = 0 THEN 1 ELSE 0 END = 1 OR PK_ID = 1",
            "q.limit": 3,
        },
    )
    assert rows == [
        {"PK_ID": 1, "band": "low", "one": 10, "more": "no"},
        {"PK_ID": 2, "band": "low", "one": None, "more": "yes"},
        {"PK_ID": 4, "band": "high", "one": None, "more": "yes"},
    ]


def test_list_fields_cannot_be_filtered(api: Api) -> None:
    r = api.get("/tables/Customers/records", **{"q.where": "Tags = 1"})
    assert r.status_code == 400 and r.json()["Code"] == "SqlServerError"


def test_password_cannot_be_selected(api: Api) -> None:
    r = api.get("/tables/Customers/records", **{"q.select": "Portal_Password"})
    assert r.status_code == 400


def test_unknown_field_is_field_not_found(api: Api) -> None:
    for params in ({"q.where": "Nope = 1"}, {"q.select": "Nope"}, {"q.orderBy": "Nope"}):
        r = api.get("/tables/Customers/records", **params)
        assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound", params


def test_malformed_sql_is_sql_server_error(api: Api) -> None:
    r = api.get("/tables/Customers/records", **{"q.where": "Name = = 'x'"})
    assert r.status_code == 400
    assert r.json()["Code"] == "SqlServerError" and r.json()["Message"]


def test_unknown_objects_are_object_not_found(api: Api) -> None:
    for path in ("/tables/Nope", "/tables/Nope/records", "/views/Nope/fields", "/nothing"):
        r = api.get(path)
        assert r.status_code == 404 and r.json()["Code"] == "ObjectNotFound", path
        assert r.headers["X-Caspio-Request-ID"]


def test_pk_id_is_absent_from_fields_but_in_records(api: Api) -> None:
    names = [f["Name"] for f in api.get("/tables/Customers/fields").json()["Result"]]
    assert "PK_ID" not in names
    assert recs(api, "/tables/Customers/records", **{"q.limit": 1})[0]["PK_ID"] == 1
    assert api.get("/tables/Customers/fields/PK_ID").json()["Code"] == "FieldNotFound"


def test_views_pk_id_string_and_table_field_names(api: Api) -> None:
    fields = api.get("/views/Customer_Orders/fields").json()["Result"]
    by_name = {f["Name"]: f for f in fields}
    assert by_name["Name"]["TableFieldName"] == "Customers.Name"
    assert by_name["Orders_Updated"]["TableFieldName"] == "Orders.Updated"  # collision rename
    rows = recs(api, "/views/Customer_Orders/records", **{"q.limit": 3})
    assert all(isinstance(r["PK_ID"], str) and "," in r["PK_ID"] for r in rows)
    order_pk, customer_pk = rows[0]["PK_ID"].split(",")
    order = recs(api, "/tables/Orders/records", **{"q.where": f"PK_ID = {order_pk}"})[0]
    cust = recs(api, "/tables/Customers/records", **{"q.where": f"PK_ID = {customer_pk}"})[0]
    assert order["Customer_ID"] == cust["Customer_ID"] == rows[0]["Customer_ID"]
    assert (
        len(
            recs(
                api,
                "/views/Customer_Orders/records",
                **{"q.where": "Segment = 'Consumer'", "q.limit": 1000},
            )
        )
        > 0
    )


def test_both_roots_and_no_rest_v3(api: Api) -> None:
    v2 = api.get("/tables/Customers/records", root=api.emu.v2_url, **{"q.limit": 3})
    v3 = api.get("/tables/Customers/records", **{"q.limit": 3})
    assert v2.status_code == 200 and v2.json() == v3.json()
    r = api.get("/tables", root=api.emu.base_url + "/rest/v3")
    assert r.status_code == 404


def test_uri_longer_than_2047_is_414(api: Api) -> None:
    r = api.get("/tables/Customers/records", **{"q.where": "Name = '" + "x" * 2100 + "'"})
    assert r.status_code == 414
    assert r.headers["X-Caspio-Request-ID"]


def test_subquery_over_another_table_is_allowed(api: Api) -> None:
    rows = recs(
        api,
        "/tables/Customers/records",
        **{
            "q.where": "Customer_ID IN (SELECT Customer_ID FROM Orders WHERE Total > 3000)",
            "q.limit": 1000,
        },
    )
    big = recs(api, "/tables/Orders/records", **{"q.where": "Total > 3000", "q.limit": 1000})
    assert {r["Customer_ID"] for r in rows} == {o["Customer_ID"] for o in big}


def test_pagination_total_with_group_by_counts_groups(api: Api) -> None:
    r = api.get(
        "/tables/Customers/records",
        **{
            "q.select": "Country, COUNT(PK_ID) AS n",
            "q.groupBy": "Country",
            "q.getPaginationInfo": "true",
            "q.pageSize": 5,
        },
    )
    assert r.json()["Pagination"]["TotalCount"] == 6
