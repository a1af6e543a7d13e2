"""Table design over HTTP (POST/GET/PUT/DELETE /tables/{t}/fields(/{f})), and the INTEGER range.

Caspio tables change under a running sync (README "Table design changes"): fields are added,
renamed, retyped and deleted. These tests pin what a connector relies on: existing rows get null
(or a formula's value) in a new field, data survives a rename or a convertible type change, a
refused change changes nothing, and no design change moves an OnUpdate stamp. Answers are
checked against Caspio's OpenAPI document with the conformance helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from caspio_emulator import DEMO_DATASET, DatasetError, Emulator, load_dataset
from caspio_emulator.sql import QueryError
from caspio_emulator.store import Table

from .conftest import Api
from .test_conformance import _doc, validate
from .test_wire_cache import assert_every_row_identical

FIELDS = "/v3/tables/{tableName}/fields"
FIELD = "/v3/tables/{tableName}/fields/{fieldName}"
INT_MIN, INT_MAX = -2147483648, 2147483647


def answered_as_documented(r: requests.Response, template: str, method: str) -> None:
    """Status is one the OpenAPI lists for the operation; a body only where it documents one."""
    responses = _doc()["paths"][template][method]["responses"]
    assert str(r.status_code) in responses, (r.status_code, r.text)
    assert r.headers["X-Caspio-Request-ID"]
    if "content" in responses[str(r.status_code)]:
        validate(template, r.json(), method=method, status=str(r.status_code))
    elif r.status_code < 400:
        assert r.content == b""
    else:  # errors: Caspio's error shape
        assert set(r.json()) == {"Code", "Message", "Resource", "RequestId"}


def rows(api: Api, table: str, select: str | None = None) -> dict[Any, dict[str, Any]]:
    """Every row of a table (or of the view Customer_Orders) by PK_ID, a page at a time."""
    kind = "views" if table == "Customer_Orders" else "tables"
    params: dict[str, Any] = {"q.pageSize": 1000, "q.orderBy": "PK_ID"}
    if select:
        params["q.select"] = select
    out: dict[int, dict[str, Any]] = {}
    page = 1
    while True:
        r = api.get(f"/{kind}/{table}/records", **params, **{"q.pageNumber": page})
        assert r.status_code == 200, r.text
        batch = r.json()["Result"]
        out.update({row["PK_ID"]: row for row in batch})
        if len(batch) < 1000:
            return out
        page += 1


def stamps(api: Api, table: str = "Customers") -> dict[int, Any]:
    return {pk: row["Updated"] for pk, row in rows(api, table, "PK_ID, Updated").items()}


def field_names(api: Api, table: str) -> list[str]:
    r = api.get(f"/tables/{table}/fields")
    validate(FIELDS, r.json())
    return [f["Name"] for f in r.json()["Result"]]


def post_field(api: Api, table: str, body: Any) -> requests.Response:
    r = api.write("POST", f"/tables/{table}/fields", body)
    answered_as_documented(r, FIELDS, "post")
    return r


def put_field(api: Api, table: str, name: str, body: Any) -> requests.Response:
    r = api.write("PUT", f"/tables/{table}/fields/{name}", body)
    answered_as_documented(r, FIELD, "put")
    return r


def delete_field(api: Api, table: str, name: str) -> requests.Response:
    r = api.write("DELETE", f"/tables/{table}/fields/{name}")
    answered_as_documented(r, FIELD, "delete")
    return r


def table(emu: Emulator, name: str) -> Table:
    t = emu.store.table(name)
    assert t is not None
    return t


def error(r: requests.Response, status: int, code: str, text: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.json()["Code"] == code, r.text
    assert text.lower() in r.json()["Message"].lower(), r.text


# ---------------------------------------------------------------- add


def test_add_field_existing_rows_get_null_and_no_stamp_moves(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps, before = stamps(api), rows(api, "Customers")
    r = post_field(api, "Customers", {"Name": "Loyalty_Tier", "Type": "STRING", "Label": "Tier"})
    assert r.status_code == 201 and r.content == b""
    assert field_names(api, "Customers")[-1] == "Loyalty_Tier"
    f = api.get("/tables/Customers/fields/Loyalty_Tier").json()["Result"]
    assert f["Type"] == "STRING" and f["Label"] == "Tier" and f["Editable"] is True
    assert f["DisplayOrder"] == len(field_names(api, "Customers"))
    after = rows(api, "Customers")
    assert len(after) == 320
    for pk, row in after.items():
        assert row.pop("Loyalty_Tier") is None
        assert row == before[pk]  # every other value as it was
    assert list(api.get("/tables/Customers/records").json()["Result"][0])[-1] == "Loyalty_Tier"
    assert stamps(api) == before_stamps
    # the new field is a field like any other: written, filtered, and through /rest/v2 too
    r = api.write("PUT", "/tables/Customers/records", {"Loyalty_Tier": "Gold"}, where="PK_ID = 7")
    assert r.json()["RecordsAffected"] == 1
    got = api.get("/tables/Customers/records", **{"q.where": "Loyalty_Tier = 'gold'"})
    assert [x["PK_ID"] for x in got.json()["Result"]] == [7]
    v2 = api.get("/tables/Customers/fields/loyalty_tier", root=api.emu.v2_url)
    assert v2.status_code == 200 and v2.json()["Result"]["Name"] == "Loyalty_Tier"
    assert_every_row_identical(api.emu.store, table(api.emu, "Customers").scope)


def test_add_field_at_a_position_and_on_v2(fresh_api: Api) -> None:
    api = fresh_api
    r = api.s.post(
        api.emu.v2_url + "/tables/Products/fields",
        json={"Name": "Rank", "Type": "INTEGER", "DisplayOrder": 2},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    names = field_names(api, "Products")
    assert names[:3] == ["SKU", "Rank", "Name"]
    fields = api.get("/tables/Products/fields").json()["Result"]
    assert [f["DisplayOrder"] for f in fields] == list(range(1, len(fields) + 1))
    first = api.get("/tables/Products/records", **{"q.limit": 1}).json()["Result"][0]
    assert list(first)[:4] == ["PK_ID", "SKU", "Rank", "Name"]


def test_add_formula_field_computes_every_row_without_moving_stamps(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps, before = stamps(api), rows(api, "Customers")
    body = {
        "Name": "Display_Name",
        "Type": "STRING",
        "IsFormula": True,
        "Formula": "Name + ' (' + Country + ')'",
    }
    assert post_field(api, "Customers", body).status_code == 201
    body = {
        "Name": "Double_Limit",
        "Type": "NUMBER",
        "IsFormula": True,
        "Formula": "Credit_Limit * 2",
    }
    assert post_field(api, "Customers", body).status_code == 201
    body = {
        "Name": "Is_Big",
        "Type": "YES/NO",
        "Formula": "CASE WHEN Credit_Limit >= 5000 THEN 1 ELSE 0 END",
    }
    assert post_field(api, "Customers", body).status_code == 201
    after = rows(api, "Customers")
    for pk, row in after.items():
        old = before[pk]
        want = None if old["Country"] is None else f"{old['Name']} ({old['Country']})"
        assert row["Display_Name"] == want
        limit = old["Credit_Limit"]
        assert row["Double_Limit"] == (None if limit is None else limit * 2)
        assert row["Is_Big"] is (None if limit is None else limit >= 5000)
    assert stamps(api) == before_stamps
    f = api.get("/tables/Customers/fields/Double_Limit").json()
    validate(FIELD, f)  # no "Formula" key: BaseColumnResult does not have one
    assert f["Result"]["IsFormula"] is True and f["Result"]["Editable"] is False
    # read-only, filterable, and kept current as the row changes
    r = api.write("PUT", "/tables/Customers/records", {"Double_Limit": 1}, where="PK_ID = 1")
    error(r, 400, "IncorrectBodyParameter", "read-only")
    r = api.write(
        "PUT",
        "/tables/Customers/records",
        {"Credit_Limit": 123.5},
        where="PK_ID = 1",
        response="rows",
    )
    assert r.json()["Result"][0]["Double_Limit"] == 247.0
    got = api.get("/tables/Customers/records", **{"q.where": "Double_Limit = 247"}).json()
    assert [x["PK_ID"] for x in got["Result"]] == [1]
    r = api.write(
        "POST", "/tables/Customers/records", {"Name": "Zoë", "Country": "Peru"}, response="rows"
    )
    assert r.json()["Result"][0]["Display_Name"] == "Zoë (Peru)"
    assert_every_row_identical(api.emu.store, table(api.emu, "Customers").scope)


def test_new_generated_fields_fill_existing_rows_but_timestamps_stay_null(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps = stamps(api, "Orders")
    for body in (
        {"Name": "Seq", "Type": "AUTONUMBER"},
        {"Name": "Ref", "Type": "GUID"},
        {"Name": "Ticket", "Type": "PREFIXED AUTONUMBER", "Prefix": "T-", "Format": "0001"},
        {"Name": "Code", "Type": "RANDOM ID", "Format": "U", "Length": 6},
        {"Name": "Changed", "Type": "TIMESTAMP", "OnUpdate": True, "TimeZone": "UTC"},
    ):
        assert post_field(api, "Orders", body).status_code == 201
    after = rows(api, "Orders")
    assert [row["Seq"] for row in after.values()] == list(range(1, 1401))
    assert [row["Ticket"] for row in after.values()][:2] == ["T-0001", "T-0002"]
    assert len({row["Ref"] for row in after.values()}) == 1400
    assert all(len(row["Code"]) == 6 and row["Code"].isupper() for row in after.values())
    assert all(row["Changed"] is None for row in after.values())
    assert stamps(api, "Orders") == before_stamps
    r = api.write("POST", "/tables/Orders/records", {"Customer_ID": 1001}, response="rows")
    new = r.json()["Result"][0]
    assert new["Seq"] == 1401 and new["Ticket"] == "T-1401" and new["Changed"] is None
    # the view over Orders survived the table's rebuild
    assert len(rows(api, "Customer_Orders")) == 1401


def test_pk_ids_of_deleted_rows_never_come_back_after_a_design_change(fresh_api: Api) -> None:
    api = fresh_api
    api.write("DELETE", "/tables/Products/records", where="PK_ID > 55")
    assert post_field(api, "Products", {"Name": "Extra", "Type": "TEXT"}).status_code == 201
    r = api.write("POST", "/tables/Products/records", {"Name": "after"}, response="rows")
    assert r.json()["Result"][0]["PK_ID"] == 61


# ---------------------------------------------------------------- get


def test_get_one_field(api: Api) -> None:
    r = api.get("/tables/Customers/fields/updated")  # names are case-insensitive
    assert r.status_code == 200
    answered_as_documented(r, FIELD, "get")
    assert r.json()["Result"]["Name"] == "Updated" and r.json()["Result"]["OnUpdate"] is True
    error(api.get("/tables/Customers/fields/Nope"), 404, "FieldNotFound", "Nope")
    error(api.get("/tables/Customers/fields/PK_ID"), 404, "FieldNotFound")  # not a listed field
    error(api.get("/tables/Nope/fields/Name"), 404, "ObjectNotFound")
    r = api.get("/tables/Customers/fields/Name", root=api.emu.v2_url)
    assert r.status_code == 200 and r.json()["Result"]["Name"] == "Name"


# ---------------------------------------------------------------- update


def test_rename_keeps_the_data_under_the_new_name(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps = stamps(api)
    before = rows(api, "Customers")
    position = field_names(api, "Customers").index("City")
    r = put_field(api, "Customers", "City", {"Name": "Town", "Label": "Town"})
    assert r.status_code == 204 and r.content == b""
    names = field_names(api, "Customers")
    assert "City" not in names and names.index("Town") == position
    after = rows(api, "Customers")
    assert {pk: row["Town"] for pk, row in after.items()} == {
        pk: row["City"] for pk, row in before.items()
    }
    assert all("City" not in row for row in after.values())
    assert stamps(api) == before_stamps
    error(api.get("/tables/Customers/records", **{"q.select": "City"}), 404, "FieldNotFound")
    error(
        api.get("/tables/Customers/records", **{"q.where": "City = 'Köln'"}), 404, "FieldNotFound"
    )
    error(api.get("/tables/Customers/fields/City"), 404, "FieldNotFound")
    r = api.write("PUT", "/tables/Customers/records", {"City": "x"}, where="PK_ID = 1")
    error(r, 404, "FieldNotFound")
    assert api.get("/tables/Customers/fields/Town").json()["Result"]["Label"] == "Town"


def test_retype_converts_the_data(fresh_api: Api) -> None:
    api = fresh_api
    before = rows(api, "Products")
    assert put_field(api, "Products", "Price", {"Type": "STRING"}).status_code == 204
    assert put_field(api, "Products", "Unit_Cost", {"Type": "TEXT"}).status_code == 204
    after = rows(api, "Products")
    assert after[1]["Price"] == "113.78" and after[1]["Unit_Cost"] == "55.7206"
    for pk, row in after.items():
        assert float(row["Price"]) == before[pk]["Price"]
    field = api.get("/tables/Products/fields/Price").json()["Result"]
    assert field["Type"] == "STRING"
    # a STRING holding numbers becomes NUMBER; NUMBER -> STRING -> NUMBER is lossless
    assert put_field(api, "Products", "Price", {"Type": "NUMBER"}).status_code == 204
    assert put_field(api, "Products", "Weight_kg", {"Type": "STRING"}).status_code == 204
    assert put_field(api, "Products", "Weight_kg", {"Type": "NUMBER"}).status_code == 204
    again = rows(api, "Products")
    for pk, row in again.items():
        assert row["Price"] == before[pk]["Price"]
        assert row["Weight_kg"] == before[pk]["Weight_kg"]
    # an AUTONUMBER read as text; a YES/NO as 1/0 and back
    assert put_field(api, "Orders", "Tracking_Code", {"Type": "TEXT"}).status_code == 204
    assert put_field(api, "Products", "In_Stock", {"Type": "STRING"}).status_code == 204
    assert {r["In_Stock"] for r in rows(api, "Products").values()} <= {"1", "0", None}
    assert put_field(api, "Products", "In_Stock", {"Type": "YES/NO"}).status_code == 204
    assert {pk: r["In_Stock"] for pk, r in rows(api, "Products").items()} == {
        pk: r["In_Stock"] for pk, r in before.items()
    }


def test_refused_retype_changes_nothing(fresh_api: Api) -> None:
    api = fresh_api
    post_field(api, "Products", {"Name": "Long_Note", "Type": "TEXT"})
    api.write("PUT", "/tables/Products/records", {"Long_Note": "x" * 300}, where="PK_ID = 5")
    before, before_fields = rows(api, "Products"), api.get("/tables/Products/fields").json()
    r = put_field(api, "Products", "Name", {"Type": "NUMBER"})
    error(r, 400, "InvalidInputValue", "PK_ID 1")
    r = put_field(api, "Products", "Price", {"Type": "INTEGER", "Name": "Whole_Price"})
    error(r, 400, "InvalidInputValue", "not an integer")
    r = put_field(api, "Products", "Long_Note", {"Type": "STRING"})
    error(r, 400, "InvalidInputValue", "PK_ID 5")
    error(put_field(api, "Products", "Colors", {"Type": "STRING"}), 400, "IncorrectBodyParameter")
    error(
        put_field(api, "Orders", "Shipped_Date", {"Type": "NUMBER"}), 400, "IncorrectBodyParameter"
    )
    error(put_field(api, "Products", "Category", {"Unique": True}), 400, "InvalidInputValue")
    assert rows(api, "Products") == before
    assert api.get("/tables/Products/fields").json() == before_fields


def test_property_changes_and_list_items(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps = stamps(api)
    body = {"Label": "Customer segment", "Description": "who they are", "DisplayOrder": 1}
    assert put_field(api, "Customers", "Segment", body).status_code == 204
    f = api.get("/tables/Customers/fields/Segment").json()["Result"]
    assert (f["Label"], f["Description"], f["DisplayOrder"]) == (
        body["Label"],
        body["Description"],
        1,
    )
    assert field_names(api, "Customers")[0] == "Segment"
    view_field = api.get("/views/Customer_Orders/fields/Segment").json()["Result"]
    assert view_field["Label"] == "Customer segment"  # the view shows the table field's label
    # new list items: rows keep their item ids, shown with the new texts
    old_items = api.get("/tables/Customers/fields/Tags").json()["Result"]["ListField"]
    items = ["Very Important", "Wholesale"]
    assert put_field(api, "Customers", "Tags", {"ListField": items}).status_code == 204
    new = api.get("/tables/Customers/fields/Tags").json()["Result"]["ListField"]
    assert new == {"1": "Very Important", "2": "Wholesale"} and len(old_items) > 2
    for row in rows(api, "Customers").values():
        assert row["Tags"] is None or set(row["Tags"]) <= {"1", "2"}
    assert stamps(api) == before_stamps


def test_a_formula_changes_its_expression_and_result_type(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps = stamps(api, "Order_Items")
    body = {"name": "Gross", "TYPE": "currency", "formula": "Quantity * Unit_Price"}  # any case
    assert post_field(api, "Order_Items", body).status_code == 201
    first = rows(api, "Order_Items")[1]
    assert first["Gross"] == round(first["Quantity"] * first["Unit_Price"], 4)
    r = put_field(api, "Order_Items", "Gross", {"Formula": "Quantity * 10", "Type": "INTEGER"})
    assert r.status_code == 204
    assert api.get("/tables/Order_Items/fields/Gross").json()["Result"]["Type"] == "INTEGER"
    for row in rows(api, "Order_Items").values():
        assert row["Gross"] == (None if row["Quantity"] is None else row["Quantity"] * 10)
    r = put_field(api, "Order_Items", "Gross", {"Formula": "Quantity / 0"})  # fails per row: null
    assert r.status_code == 204
    assert {row["Gross"] for row in rows(api, "Order_Items").values()} == {None}
    error(put_field(api, "Order_Items", "Gross", {"Type": "GUID"}), 400, "IncorrectBodyParameter")
    error(
        put_field(api, "Order_Items", "Quantity", {"Formula": "1"}), 400, "IncorrectBodyParameter"
    )
    assert stamps(api, "Order_Items") == before_stamps


# ---------------------------------------------------------------- delete


def test_delete_field_drops_it_and_its_data(fresh_api: Api) -> None:
    api = fresh_api
    before_stamps = stamps(api)
    r = delete_field(api, "Customers", "Notes")
    assert r.status_code == 204 and r.content == b""
    assert "Notes" not in field_names(api, "Customers")
    assert all("Notes" not in row for row in rows(api, "Customers").values())
    error(api.get("/tables/Customers/records", **{"q.select": "Notes"}), 404, "FieldNotFound")
    error(delete_field(api, "Customers", "Notes"), 404, "FieldNotFound")
    assert stamps(api) == before_stamps
    # adding it back gives an empty field: the data went with the old one
    post_field(api, "Customers", {"Name": "Notes", "Type": "TEXT"})
    assert all(row["Notes"] is None for row in rows(api, "Customers").values())
    # an attachment field takes its files with it
    assert delete_field(api, "Orders", "Invoice").status_code == 204
    r = api.get("/tables/Orders/attachments/Invoice/200")
    assert r.status_code == 404


def test_pk_id_and_fields_in_use_cannot_change(fresh_api: Api) -> None:
    api = fresh_api
    error(delete_field(api, "Customers", "PK_ID"), 400, "IncorrectBodyParameter", "PK_ID")
    error(put_field(api, "Customers", "PK_ID", {"Name": "Id"}), 400, "IncorrectBodyParameter")
    error(put_field(api, "Customers", "pk_id", {"Type": "STRING"}), 400, "IncorrectBodyParameter")
    # fields the view Customer_Orders reads: as a column or in its join
    for tname, name in (
        ("Orders", "Total"),
        ("Customers", "Customer_ID"),
        ("Orders", "Customer_ID"),
    ):
        error(delete_field(api, tname, name), 400, "IncorrectBodyParameter", "Customer_Orders")
        r = put_field(api, tname, name, {"Name": "Renamed"})
        error(r, 400, "IncorrectBodyParameter", "Customer_Orders")
        error(put_field(api, tname, name, {"Type": "STRING"}), 400, "IncorrectBodyParameter")
    # a field a formula reads
    post_field(
        api, "Products", {"Name": "Margin", "Type": "CURRENCY", "Formula": "Price - Unit_Cost"}
    )
    error(delete_field(api, "Products", "Unit_Cost"), 400, "IncorrectBodyParameter", "Margin")
    error(
        put_field(api, "Products", "Price", {"Name": "P"}), 400, "IncorrectBodyParameter", "Margin"
    )
    assert delete_field(api, "Products", "Margin").status_code == 204
    assert delete_field(api, "Products", "Unit_Cost").status_code == 204
    assert len(rows(api, "Customer_Orders")) == 1400


# ---------------------------------------------------------------- validation


BAD_DEFINITIONS = [
    ({"Name": "1st", "Type": "STRING"}, "invalid field name"),
    ({"Name": "With-Dash", "Type": "STRING"}, "invalid field name"),
    ({"Name": "Näme", "Type": "STRING"}, "invalid field name"),
    ({"Name": "x" * 33, "Type": "STRING"}, "at most 32"),
    ({"Name": "", "Type": "STRING"}, "required"),
    ({"Name": "email", "Type": "STRING"}, "already exists"),
    ({"Name": "PK_ID", "Type": "INTEGER"}, "reserved"),
    ({"Name": "Select", "Type": "STRING"}, "reserved word"),
    ({"Name": "order", "Type": "NUMBER"}, "reserved word"),
    ({"Name": "Ok"}, "required"),
    ({"Name": "Ok", "Type": "BLOB"}, "unknown field type"),
    ({"Name": "Ok", "Type": "STRING", "TimeZone": "UTC"}, "TIMESTAMP"),
    ({"Name": "Ok", "Type": "TIMESTAMP", "TimeZone": "Mars/Olympus"}, "time zone"),
    ({"Name": "Ok", "Type": "LIST-STRING"}, "ListField"),
    ({"Name": "Ok", "Type": "STRING", "ListField": ["a"]}, "ListField"),
    ({"Name": "Ok", "Type": "LIST-NUMBER", "ListField": ["1", "one"]}, "not a number"),
    ({"Name": "Ok", "Type": "YES/NO", "Unique": True}, "Unique"),
    ({"Name": "Ok", "Type": "STRING", "UniqueAllowNulls": True}, "Unique"),
    ({"Name": "Ok", "Type": "STRING", "Format": "0U"}, "RANDOM ID"),
    ({"Name": "Ok", "Type": "RANDOM ID", "Format": "X"}, "Format"),
    ({"Name": "Ok", "Type": "RANDOM ID", "Format": "0", "Length": 7}, "8 to 12"),
    ({"Name": "Ok", "Type": "STRING", "Color": "red"}, "unknown field property"),
    ({"Name": "Ok", "Type": "STRING", "Unique": "yes"}, "wrong JSON type"),
    ({"Name": "Ok", "Type": "NUMBER", "IsFormula": True}, "Formula"),
    ({"Name": "Ok", "Type": "NUMBER", "Formula": "Nope * 2"}, "Nope"),
    ({"Name": "Ok", "Type": "NUMBER", "Formula": "(SELECT COUNT(*) FROM Orders)"}, "subquer"),
    ({"Name": "Ok", "Type": "NUMBER", "Formula": "SUM(Credit_Limit)"}, "aggregate"),
    ({"Name": "Ok", "Type": "NUMBER", "Formula": "Credit_Limit; DROP TABLE x"}, "Formula"),
    ({"Name": "Ok", "Type": "DATE/TIME", "Formula": "GETDATE()"}, "GETDATE"),
    ({"Name": "Ok", "Type": "GUID", "Formula": "Name"}, "result type"),
    ({"Name": "Ok", "Type": "STRING", "Formula": "Tags"}, "List field"),
    ([{"Name": "Ok", "Type": "STRING"}], "one JSON object"),
]


@pytest.fixture(scope="module")
def refusing_api() -> Iterator[Api]:
    """One account for the refusal cases: a refused definition changes nothing, so they can
    share it (each case checks that the fields are as they were)."""
    with Emulator(dataset=DEMO_DATASET) as emu:
        yield Api(emu)


@pytest.mark.parametrize(("body", "message"), BAD_DEFINITIONS, ids=[m for _, m in BAD_DEFINITIONS])
def test_bad_definitions_are_refused(refusing_api: Api, body: dict[str, Any], message: str) -> None:
    api = refusing_api
    before = api.get("/tables/Customers/fields").json()
    r = post_field(api, "Customers", body)
    error(r, 400, "IncorrectBodyParameter", message)
    assert api.get("/tables/Customers/fields").json() == before


def test_requests_that_are_not_definitions(fresh_api: Api) -> None:
    api = fresh_api
    error(post_field(api, "Nope", {"Name": "A", "Type": "STRING"}), 404, "ObjectNotFound")
    error(put_field(api, "Customers", "Nope", {"Label": "x"}), 404, "FieldNotFound", "Nope")
    error(put_field(api, "Customers", "City", {"Name": "email"}), 400, "IncorrectBodyParameter")
    error(put_field(api, "Customers", "City", {"Name": "Key"}), 400, "IncorrectBodyParameter")
    error(put_field(api, "Customers", "Name", {"IsFormula": True}), 400, "IncorrectBodyParameter")
    r = api.s.post(api.emu.v3_url + "/tables/Customers/fields", data='{"Name":"A","Type":"STRING"}')
    error(r, 415, "UnsupportedMediaType")
    r = api.s.delete(
        api.emu.v3_url + "/tables/Customers/fields/City",
        data=b"{}",
        headers={"Content-Type": "text/plain"},
    )
    error(r, 415, "UnsupportedMediaType")
    # no body needs no type (Caspio's n8n node sends its DELETEs bare: test_real_clients.py)
    assert api.s.delete(api.emu.v3_url + "/tables/Customers/fields/City").status_code == 204
    r = api.s.post(
        api.emu.v3_url + "/tables/Customers/fields",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    error(r, 400, "IncorrectBodyParameter")
    assert "A" not in field_names(api, "Customers")


# ---------------------------------------------------------------- metering and Python methods


def test_design_calls_are_metered_api_calls(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.reset_log()
    answers = [
        api.write("POST", "/tables/Products/fields", {"Name": "A", "Type": "STRING"}),
        api.get("/tables/Products/fields/A"),
        api.write("PUT", "/tables/Products/fields/A", {"Name": "B"}),
        api.write("DELETE", "/tables/Products/fields/B"),
        api.write("DELETE", "/tables/Products/fields/B"),
    ]
    assert [r.status_code for r in answers] == [201, 200, 204, 204, 404]
    assert caspio_emulator.calls == 5
    log = caspio_emulator.log
    assert [(e.method, e.status) for e in log] == [
        ("POST", 201),
        ("GET", 200),
        ("PUT", 204),
        ("DELETE", 204),
        ("DELETE", 404),
    ]
    assert [e.request_id for e in log] == [r.headers["X-Caspio-Request-ID"] for r in answers]
    caspio_emulator.configure(quota=1)
    assert api.write("POST", "/tables/Products/fields", {"Name": "C", "Type": "TEXT"}).ok
    r = api.write("POST", "/tables/Products/fields", {"Name": "D", "Type": "TEXT"})
    error(r, 403, "ApiCallsLimitExceeded")
    assert "D" not in [f.Name for f in table(caspio_emulator, "Products").fields]


def test_python_methods_share_the_rules(caspio_emulator: Emulator) -> None:
    emu = caspio_emulator
    calls = emu.calls
    added = emu.add_field("Products", {"Name": "Shelf", "Type": "STRING"})
    assert added["Name"] == "Shelf" and added["DisplayOrder"] == 11
    emu.update("Products", "PK_ID = 3", {"Shelf": "12"})
    changed = emu.update_field("Products", "Shelf", {"Name": "Shelf_No", "Type": "INTEGER"})
    assert changed["Type"] == "INTEGER" and emu.table_rows("Products")[2]["Shelf_No"] == 12
    with pytest.raises(QueryError) as exc:
        emu.add_field("Products", {"Name": "Shelf_No", "Type": "STRING"})
    assert exc.value.status == 400 and "already exists" in exc.value.message
    with pytest.raises(QueryError) as exc:
        emu.delete_field("Customers", "Segment")  # the view reads it
    assert "Customer_Orders" in exc.value.message
    emu.delete_field("Products", "Shelf_No")
    assert "Shelf_No" not in emu.table_rows("Products")[0]
    assert emu.calls == calls  # not API calls


# ---------------------------------------------------------------- INTEGER is SQL Server's int


def test_integer_takes_the_whole_int_range_in_writes(fresh_api: Api) -> None:
    api = fresh_api
    for value in (INT_MIN, INT_MAX, str(INT_MIN), -0.0):
        r = api.write("POST", "/tables/Order_Items/records", {"Quantity": value}, response="rows")
        assert r.status_code == 201, r.text
        assert r.json()["Result"][0]["Quantity"] == int(value)
    for value in (INT_MIN - 1, INT_MAX + 1, str(INT_MAX + 1), 1e10):
        r = api.write("POST", "/tables/Order_Items/records", {"Quantity": value})
        error(r, 400, "InvalidInputValue", "range")
        r = api.write("PUT", "/tables/Order_Items/records", {"Quantity": value}, where="PK_ID = 1")
        error(r, 400, "InvalidInputValue", "range")
    r = api.write("PUT", "/tables/Order_Items/records", {"Quantity": INT_MIN}, where="PK_ID = 1")
    assert r.json()["RecordsAffected"] == 1
    got = api.get("/tables/Order_Items/records", **{"q.where": f"Quantity = {INT_MIN}"}).json()
    assert [x["PK_ID"] for x in got["Result"]] == [1, 3004, 3006]


def _int_dataset(value: Any) -> dict[str, Any]:
    return {
        "tables": {
            "Counts": {
                "fields": [{"Name": "N", "Type": "INTEGER"}],
                "rows": [{"N": 0}, {"N": value}],
            }
        }
    }


@pytest.mark.parametrize("value", [INT_MIN, INT_MAX])
def test_integer_range_ends_load_from_a_dataset(value: int) -> None:
    with Emulator(dataset=_int_dataset(value)) as emu:
        assert emu.table_rows("Counts")[1]["N"] == value


@pytest.mark.parametrize("value", [INT_MIN - 1, INT_MAX + 1])
def test_integer_one_past_either_end_fails_the_dataset(value: int) -> None:
    with pytest.raises(DatasetError) as exc:
        load_dataset(_int_dataset(value))
    assert "table 'Counts', row 2, field 'N'" in str(exc.value)
    assert str(value) in str(exc.value)
