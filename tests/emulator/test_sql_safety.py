"""Nothing outside the named table or view is reachable through q.* parameters."""

from __future__ import annotations

import pytest

from caspio_emulator import Emulator

from .conftest import Api

ATTACKS = [
    ("q.where", "1=1; DROP TABLE Customers"),
    ("q.where", "1=1; DELETE FROM Customers"),
    ("q.where", "PK_ID = 1 UNION SELECT * FROM Orders"),
    ("q.where", "1=1) UNION SELECT name FROM sqlite_master --"),
    ("q.where", "1=1 /* comment */ OR 1=1; SELECT 1"),
    ("q.where", "PK_ID IN (SELECT name FROM sqlite_master)"),
    ("q.where", "PK_ID IN (SELECT PK_ID FROM tbl_Orders)"),
    ("q.where", "PK_ID IN (SELECT PK_ID FROM Orders JOIN Products ON 1=1)"),
    ("q.where", "EXISTS (SELECT 1 FROM sys.objects)"),
    ("q.select", "* FROM Orders --"),
    ("q.select", "Name FROM Orders"),
    ("q.select", "TOP 5 Name"),
    ("q.select", "Name INTO Stolen"),
    # a scalar subquery over the account's tables is Caspio's (test_real_clients.py); these
    # reach outside it or smuggle a statement
    ("q.select", "(SELECT name FROM sqlite_master) AS n"),
    ("q.select", "(SELECT COUNT(*) FROM Orders; DROP TABLE Orders) AS n"),
    ("q.select", "(SELECT COUNT(*) FROM Orders o JOIN Customers c ON 1=1) AS n"),
    ("q.select", "ROW_NUMBER() OVER (ORDER BY (SELECT name FROM sqlite_master)) AS n"),
    ("q.orderBy", "PK_ID; DROP TABLE Customers"),
    ("q.orderBy", "PK_ID UNION SELECT 1"),
    ("q.groupBy", "Segment; CREATE TABLE x (a int)"),
    ("q.where", "load_extension('x') = 1"),
    ("q.where", "sqlite_version() = '3'"),
    ("q.where", "Name = 'x' -- ' OR 1=1"),
]


@pytest.mark.parametrize(("param", "value"), ATTACKS)
def test_attack_is_rejected_or_harmless(
    api: Api, shared_emu: Emulator, param: str, value: str
) -> None:
    r = api.get("/tables/Customers/records", **{param: value})
    if r.status_code == 200:
        # only a comment that swallows a harmless tail may pass; it must not leak other data
        rows = r.json()["Result"]
        customers = shared_emu.store.table("Customers")
        assert customers is not None
        assert all(set(row) <= {"PK_ID", *(f.Name for f in customers.fields)} for row in rows)
        assert value.endswith("OR 1=1") and rows == []
    else:
        assert r.status_code in (400, 404), r.text
        assert r.json()["Code"] in ("SqlServerError", "FieldNotFound", "ObjectNotFound")
    assert len(shared_emu.table_rows("Customers")) == 320
    assert len(shared_emu.table_rows("Orders")) == 1400


def test_writes_with_a_smuggled_statement_change_nothing(fresh_api: Api) -> None:
    r = fresh_api.write(
        "DELETE", "/tables/Products/records", **{"q.where": "PK_ID = 1; DELETE FROM Products"}
    )
    assert r.status_code == 400
    assert len(fresh_api.emu.table_rows("Products")) == 60
