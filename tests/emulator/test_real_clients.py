"""Requests replayed byte for byte as Caspio's own n8n node sends them (issue 20).

Each test rebuilds one request of Caspio's official n8n node (github.com/CaspioInnovations/
n8n-node-caspioofficial, commit 52b2578; paths below are in that repository) and sends it over a
raw socket, so nothing is added that the node does not send. The node builds every call in
``nodes/Caspio/helpers/api.ts``: ``caspioApiRequest`` (lines 19-26) sets only
``Accept: application/json`` (n8n's OAuth2 helper adds ``Authorization: Bearer``), passes the
query object as ``qs`` and attaches a body only when it has keys (lines 53-55), so a DELETE
carries no body and no ``Content-Type``. n8n hands ``qs`` to axios as ``params``; ``_axios_qs``
encodes them as axios does by default (``encodeURIComponent``, then ``%20`` as ``+`` and
``:$,[]`` left bare). The Python ``caspio-sdk`` package named in the issue is not on the
package index this project can reach, so only the n8n node's requests are replayed here.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from caspio_emulator import DEMO_DATASET, Emulator
from tests import openapi

from .conftest import Api


def validate(template: str, body: Any, method: str = "get") -> None:
    """``tests.openapi.validate``, as test_conformance.py validates: the in-repository subset
    of Caspio's document carries every operation these tests replay."""
    openapi.validate(template, body, method)


def _axios_qs(params: dict[str, Any]) -> str:
    """axios's default ``params`` serialisation (lib/helpers/buildURL.js ``encode``)."""

    def enc(value: str) -> str:
        out = quote(value, safe="-_.!~*'()")
        for raw, bare in (("%3A", ":"), ("%24", "$"), ("%2C", ","), ("%20", "+")):
            out = out.replace(raw, bare)
        return out.replace("%5B", "[").replace("%5D", "]")

    return "&".join(f"{enc(k)}={enc(str(v))}" for k, v in params.items())


class N8n:
    """Sends what ``caspioApiRequest`` sends: no body, ``Accept: application/json``."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.token = Api(emu).token

    def call(self, method: str, path: str, qs: dict[str, Any]) -> tuple[int, Any]:
        base = urlsplit(self.emu.base_url)
        conn = http.client.HTTPConnection(base.hostname or "127.0.0.1", base.port, timeout=10)
        try:
            target = "/integrations/rest" + path + ("?" + _axios_qs(qs) if qs else "")
            conn.putrequest(method, target, skip_accept_encoding=True)
            conn.putheader("Accept", "application/json")
            conn.putheader("Authorization", f"Bearer {self.token}")
            conn.endheaders()
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        ctype = resp.getheader("Content-Type") or ""
        return resp.status, (json.loads(raw) if raw and "json" in ctype else raw)


@pytest.fixture
def n8n(caspio_emulator: Emulator) -> N8n:
    return N8n(caspio_emulator)


# ---------------------------------------------------------------- 1. DELETE without a body


def test_n8n_delete_records_without_body(n8n: N8n) -> None:
    """actions/shared/deleteRecords.operation.ts lines 173-181 (advanced mode): DELETE
    /v3/tables/{t}/records with the where in plain ``where`` (record/operations/
    delete.operation.ts line 12), no body, no Content-Type."""
    status, body = n8n.call("DELETE", "/v3/tables/Order_Items/records", {"where": "PK_ID <= 3"})
    assert status == 200, body
    validate("/v3/tables/{tableName}/records", body, method="delete")
    assert body == {"RecordsAffected": 3}
    assert [r["PK_ID"] for r in n8n.emu.table_rows("Order_Items")[:1]] == [4]


def test_delete_field_without_body(n8n: N8n) -> None:
    """The field-design DELETE has no body either (DeleteTableField takes none)."""
    status, body = n8n.call("DELETE", "/v3/tables/Products/fields/Weight_kg", {})
    assert status == 204, body
    assert n8n.emu.store.table("Products").field("Weight_kg") is None  # type: ignore[union-attr]


def test_body_without_json_type_is_still_415(fresh_api: Api) -> None:
    r = fresh_api.s.post(
        fresh_api.emu.v3_url + "/tables/Orders/records",
        data=b'{"Status": "New"}',
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 415


# ---------------------------------------------------------------- 2. '' against typed fields


def test_n8n_is_empty_filter_on_typed_fields(n8n: N8n) -> None:
    """helpers/builders/where.builder.ts line 16 ``isEmpty``: ``(F IS NULL OR F = '')``, sent
    as ``q.where`` with ``q.limit`` (actions/shared/selectRecords.operation.ts lines 212 and
    529-534). SQL Server converts '' to 0 (int, money, bit) and 1900-01-01 (datetime)."""
    emu = n8n.emu
    emu.delete("Order_Items", "PK_ID > 0")
    emu.insert("Order_Items", {"Order_ID": 1, "Quantity": 0, "Unit_Price": 0, "Discount": 0})
    emu.insert("Order_Items", {"Order_ID": 2, "Quantity": 5, "Unit_Price": 1.5})
    emu.insert("Order_Items", {"Order_ID": 3})
    path = "/v3/tables/Order_Items/records"
    for field, want in (
        ("Quantity", [1, 3]),
        ("Unit_Price", [1, 3]),  # CURRENCY
        ("Discount", [1, 2, 3]),  # NUMBER: row 2 has none
    ):
        qs = {"q.where": f"({field} IS NULL OR {field} = '')", "q.limit": 50}
        status, body = n8n.call("GET", path, qs)
        assert status == 200, body
        validate("/v3/tables/{tableName}/records", body)
        assert [r["Order_ID"] for r in body["Result"]] == want, field
    # where.builder.ts line 17 ``isNotEmpty`` and line 9 ``equals`` (always quoted)
    qs = {"q.where": "(Quantity IS NOT NULL AND Quantity != '')", "q.limit": 50}
    assert [r["Order_ID"] for r in n8n.call("GET", path, qs)[1]["Result"]] == [2]
    qs = {"q.where": "Quantity = ' 5 '", "q.limit": 50}
    assert [r["Order_ID"] for r in n8n.call("GET", path, qs)[1]["Result"]] == [2]


def test_n8n_is_empty_filter_on_dates_and_yes_no(n8n: N8n) -> None:
    emu = n8n.emu
    emu.update("Orders", "PK_ID = 1", {"Shipped_Date": "1900-01-01T00:00:00", "Paid": False})
    emu.update("Orders", "PK_ID = 2", {"Shipped_Date": None, "Paid": True})
    path = "/v3/tables/Orders/records"
    qs = {"q.where": "(Shipped_Date IS NULL OR Shipped_Date = '') AND PK_ID <= 2", "q.limit": 50}
    status, body = n8n.call("GET", path, qs)
    assert status == 200, body
    validate("/v3/tables/{tableName}/records", body)
    assert [r["PK_ID"] for r in body["Result"]] == [1, 2]
    qs = {"q.where": "(Paid IS NOT NULL AND Paid != '') AND PK_ID <= 2", "q.limit": 50}
    assert [r["PK_ID"] for r in n8n.call("GET", path, qs)[1]["Result"]] == [2]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("Quantity = 'abc'", "converting the varchar value 'abc' to data type int."),
        ("Quantity = '5.0'", "converting the varchar value '5.0' to data type int."),
        ("Quantity = '3000000000'", "The conversion of the varchar value '3000000000' overflowed"),
        ("Quantity IN (1, N'x')", "converting the nvarchar value 'x' to data type int."),
        ("Discount = 'abc'", "Error converting data type varchar to float."),
        ("Unit_Price = 'abc'", "Cannot convert a char value to money."),
        ("Quantity BETWEEN '' AND 'z'", "converting the varchar value 'z' to data type int."),
    ],
)
def test_n8n_equals_filter_conversion_error(n8n: N8n, where: str, message: str) -> None:
    """where.builder.ts line 9 quotes every ``equals`` value: a value that SQL Server cannot
    convert to the field's type fails the whole query."""
    status, body = n8n.call("GET", "/v3/tables/Order_Items/records", {"q.where": where})
    assert status == 400 and body["Code"] == "SqlServerError", body
    assert message in body["Message"]


# ---------------------------------------------------------------- 3. windows and subqueries


def test_n8n_advanced_select_window_functions(n8n: N8n) -> None:
    """Advanced mode passes the Select, Where and Order By boxes through as ``q.select``,
    ``q.where``, ``q.orderBy`` and the Limit as ``q.limit`` (actions/shared/
    selectRecords.operation.ts lines 240-279; helpers/utils.ts line 313)."""
    qs = {
        "q.select": "PK_ID, Order_ID, ROW_NUMBER() OVER (ORDER BY PK_ID) AS rn, "
        "SUM(Quantity) OVER (PARTITION BY Order_ID) AS order_qty, "
        "RANK() OVER (PARTITION BY Order_ID ORDER BY Quantity DESC, PK_ID) AS pos, "
        "(SELECT COUNT(*) FROM Orders) AS n_orders",
        "q.where": "Order_ID <= 5003",
        "q.orderBy": "PK_ID DESC",
        "q.limit": 4,
    }
    status, body = n8n.call("GET", "/v3/tables/Order_Items/records", qs)
    assert status == 200, body
    validate("/v3/tables/{tableName}/records", body)
    rows = n8n.emu.table_rows("Order_Items")
    picked = [r for r in rows if r["Order_ID"] <= 5003]
    want = []
    for i, r in enumerate(picked, start=1):
        same = [x for x in picked if x["Order_ID"] == r["Order_ID"]]
        ranked = sorted(same, key=lambda x: (-x["Quantity"], x["PK_ID"]))
        want.append(
            {
                "PK_ID": r["PK_ID"],
                "Order_ID": r["Order_ID"],
                "rn": i,
                "order_qty": sum(x["Quantity"] for x in same),
                "pos": ranked.index(r) + 1,
                "n_orders": 1400,
            }
        )
    assert body["Result"] == list(reversed(want))[:4]


def test_window_and_subquery_rules(n8n: N8n) -> None:
    path = "/v3/tables/Order_Items/records"
    bad = [
        ({"q.where": "ROW_NUMBER() OVER (ORDER BY PK_ID) = 1"}, "Windowed functions"),
        ({"q.select": "(SELECT PK_ID FROM Orders) AS x"}, "Subquery returned more than 1 value"),
        (
            {"q.select": "(SELECT PK_ID, Status FROM Orders) AS x"},
            "Only one expression can be specified",
        ),
        ({"q.select": "(SELECT name FROM sqlite_master) AS x"}, "not found"),
        ({"q.select": "SUM(Nope) OVER () AS x"}, "Nope"),
    ]
    for qs, message in bad:
        status, body = n8n.call("GET", path, qs)
        assert status in (400, 404) and message in body["Message"], (qs, body)
    # a scalar subquery in q.where, over the same table
    qs = {"q.where": "PK_ID = (SELECT MAX(PK_ID) FROM Order_Items)"}
    status, body = n8n.call("GET", path, qs)
    assert status == 200, body
    assert [r["PK_ID"] for r in body["Result"]] == [3003]
    # a window inside an IN subquery: every order's first line
    qs = {
        "q.select": "COUNT(*) AS n",
        "q.where": "PK_ID IN (SELECT MIN(PK_ID) FROM Order_Items GROUP BY Order_ID)",
    }
    status, body = n8n.call("GET", path, qs)
    assert status == 200 and body["Result"] == [{"n": 1400}], body


# ---------------------------------------------------------------- 4/5. attachments: where, views


@pytest.fixture
def attach_emu() -> Iterator[Emulator]:
    """The demo account plus a view over Orders that shows its ATTACHMENT field."""
    raw = json.loads(DEMO_DATASET.read_text())
    raw["views"]["Order_Invoices"] = {
        "from": ["Orders", "Customers"],
        "join": "Orders.Customer_ID = Customers.Customer_ID",
        "fields": ["Orders.Order_ID", "Orders.Invoice", "Customers.Name"],
    }
    with Emulator(dataset=raw) as emu:
        yield emu


def test_n8n_list_table_attachments_plain_where(attach_emu: Emulator) -> None:
    """actions/shared/listAttachments.operation.ts lines 170-181: GET .../fileInfo with the
    filter in plain ``where``."""
    n8n = N8n(attach_emu)
    path = "/v3/tables/Orders/attachments/Invoice/fileInfo"
    status, body = n8n.call("GET", path, {"where": "PK_ID <= 400"})
    assert status == 200, body
    validate("/v3/tables/{tableName}/attachments/{attachmentFieldName}/fileInfo", body)
    assert [i["PK_ID"] for i in body["Result"]] == [200, 400]


def test_n8n_view_attachments(attach_emu: Emulator) -> None:
    """listAttachments.operation.ts line 176 builds ``/v3/views/{v}/attachments/{f}/fileInfo``
    for a view source; downloadAttachments.operation.ts lines 73-91 then reads one file."""
    n8n = N8n(attach_emu)
    base = "/v3/views/Order_Invoices/attachments/Invoice"
    orders = {r["PK_ID"]: r["Order_ID"] for r in attach_emu.table_rows("Orders")}
    where = f"Order_ID <= {orders[400]}"
    status, body = n8n.call("GET", base + "/fileInfo", {"where": where})
    assert status == 200, body
    validate("/v3/views/{viewName}/attachments/{attachmentFieldName}/fileInfo", body)
    rows = {r["Order_ID"]: r["PK_ID"] for r in attach_emu.table_rows("Order_Invoices")}
    assert [i["PK_ID"] for i in body["Result"]] == [rows[orders[200]], rows[orders[400]]]
    status, body = n8n.call("GET", base + "/fileInfo", {})
    assert status == 200 and len(body["Result"]) == 7, body
    first = body["Result"][0]
    assert first["FileName"].startswith("invoice-") and isinstance(first["PK_ID"], str)
    status, content = n8n.call("GET", f"{base}/{first['PK_ID']}", {})
    assert status == 200 and content.startswith(b"%PDF")
    assert len(content) == first["Size"]
    status, _ = n8n.call("GET", base + "/0,0", {})
    assert status == 404
    status, body = n8n.call("GET", "/v3/views/Order_Invoices/attachments/Name/fileInfo", {})
    assert status == 400, body
    status, body = n8n.call("DELETE", base, {"where": "Order_ID = 1"})
    assert status == 405, body
