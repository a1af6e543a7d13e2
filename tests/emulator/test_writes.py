"""POST/PUT/DELETE: README section 5, generated values and TIMESTAMP stamps."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

import requests

from caspio_emulator import Emulator

from .conftest import Api


def test_post_answers_201_empty_or_rows(fresh_api: Api) -> None:
    r = fresh_api.write("POST", "/tables/Customers/records", {"Name": "New Co", "Segment": "SMB"})
    assert r.status_code == 201 and r.content == b""
    assert r.headers["X-Caspio-Request-ID"]
    r = fresh_api.write("POST", "/tables/Customers/records", {"name": "Row Co"}, response="rows")
    assert r.status_code == 201
    (row,) = r.json()["Result"]
    assert row["Name"] == "Row Co" and row["PK_ID"] == 322 and row["Customer_ID"] == 1322


def test_generated_values(fresh_api: Api) -> None:
    r = fresh_api.write(
        "POST", "/tables/Orders/records", {"Customer_ID": 1001, "Total": 1.23456}, response="rows"
    )
    (row,) = r.json()["Result"]
    assert row["Order_ID"] == 6401  # AUTONUMBER continues after the data
    assert row["Order_Number"] == "SO-001401"  # PREFIXED AUTONUMBER, Format 000001
    assert re.fullmatch(r"[0-9A-Z]{10}", row["Tracking_Code"])  # RANDOM ID 0U, Length 10
    assert row["Total"] == 1.2346  # currency: 4 decimals
    r = fresh_api.write("POST", "/tables/Order_Items/records", {"Order_ID": 1}, response="rows")
    assert re.fullmatch(r"[0-9a-f-]{36}", r.json()["Result"][0]["Item_GUID"])
    r = fresh_api.write("POST", "/tables/Products/records", {"Name": "p"}, response="rows")
    assert r.json()["Result"][0]["SKU"] == "SKU-0061"


def test_timestamps_stamped_in_field_zone_with_dst(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    # 2024-07-01 19:00 UTC is 12:00 in Los Angeles (PDT, UTC-7); in January it is UTC-8
    caspio_emulator.set_clock(datetime(2024, 7, 1, 19, 0, 0, tzinfo=timezone.utc))
    r = api.write("POST", "/tables/Customers/records", {"Name": "Summer"}, response="rows")
    assert r.json()["Result"][0]["Updated"] == "2024-07-01T12:00:00"
    caspio_emulator.configure(clock=datetime(2024, 1, 15, 20, 0, 0, tzinfo=timezone.utc))
    r = api.write(
        "PUT",
        "/tables/Customers/records",
        {"City": "Winter"},
        response="rows",
        **{"q.where": "Name = 'Summer'"},
    )
    assert r.json()["Result"][0]["Updated"] == "2024-01-15T12:00:00"
    r = api.write("POST", "/tables/Orders/records", {"Customer_ID": 1001}, response="rows")
    assert r.json()["Result"][0]["Updated"] == "2024-01-15T20:00:00"  # UTC field
    caspio_emulator.set_clock(None)  # real time again
    r = api.write("POST", "/tables/Orders/records", {"Customer_ID": 1001}, response="rows")
    assert r.json()["Result"][0]["Updated"][:4] == str(datetime.now(timezone.utc).year)


def test_put_and_delete(fresh_api: Api) -> None:
    r = fresh_api.write(
        "PUT",
        "/tables/Products/records",
        {"In_Stock": False},
        **{"q.where": "Category = 'Training'"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["RecordsAffected"] == 12 and body["Result"] == []
    r = fresh_api.write(
        "PUT", "/tables/Products/records", {"Price": 1}, where="PK_ID = 2", response="rows"
    )
    assert r.json()["RecordsAffected"] == 1 and r.json()["Result"][0]["Price"] == 1.0
    r = fresh_api.write("DELETE", "/tables/Products/records", **{"q.where": "PK_ID > 55"})
    assert r.json() == {"RecordsAffected": 5}
    r = fresh_api.write("DELETE", "/tables/Products/records", where="PK_ID > 55")
    assert r.json() == {"RecordsAffected": 0}


def test_put_and_delete_require_a_where(fresh_api: Api) -> None:
    assert fresh_api.write("DELETE", "/tables/Products/records").status_code == 400
    assert fresh_api.write("PUT", "/tables/Products/records", {"Name": "x"}).status_code == 400


def test_write_without_json_content_type_is_415(fresh_api: Api) -> None:
    url = fresh_api.emu.v3_url + "/tables/Products/records"
    r = fresh_api.s.post(
        url, data="Name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 415 and r.headers["X-Caspio-Request-ID"]
    r = fresh_api.s.delete(
        url, params={"q.where": "PK_ID = 1"}, data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    # no body, no type: what Caspio's n8n node sends (test_real_clients.py)
    r = fresh_api.s.delete(url, params={"q.where": "PK_ID = 1"})
    assert r.status_code == 200 and r.json() == {"RecordsAffected": 1}


def test_unknown_and_read_only_fields_are_rejected(fresh_api: Api) -> None:
    r = fresh_api.write("POST", "/tables/Customers/records", {"Nope": 1})
    assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound"
    for field in ("PK_ID", "Customer_ID", "Updated"):
        r = fresh_api.write("POST", "/tables/Customers/records", {field: 5})
        assert r.status_code == 400, field
    r = fresh_api.write("POST", "/tables/Customers/records", {"Active": "maybe"})
    assert r.status_code == 400 and r.json()["Code"] == "InvalidInputValue"
    r = fresh_api.s.post(
        fresh_api.emu.v3_url + "/tables/Customers/records",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["Code"] == "IncorrectBodyParameter"


def test_list_values_are_written_by_id_or_value(fresh_api: Api) -> None:
    r = fresh_api.write(
        "POST", "/tables/Customers/records", {"Name": "L", "Tags": ["VIP", 3]}, response="rows"
    )
    assert r.json()["Result"][0]["Tags"] == {"1": "VIP", "3": "Wholesale"}


def test_password_is_written_but_never_returned(fresh_api: Api) -> None:
    r = fresh_api.write(
        "POST",
        "/tables/Customers/records",
        {"Name": "P", "Portal_Password": "s3cret"},
        response="rows",
    )
    assert "Portal_Password" not in r.json()["Result"][0]
    assert fresh_api.get("/tables/Customers/passwordFields").json() == {
        "Result": ["Portal_Password"]
    }


def test_keyset_paging_is_exact_while_another_client_writes(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    writer = Api(caspio_emulator)
    stop = threading.Event()
    errors: list[str] = []

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            r = writer.write(
                "PUT",
                "/tables/Order_Items/records",
                {"Quantity": i},
                **{"q.where": f"PK_ID = {i % 3000 + 1}"},
            )
            if r.status_code != 200:
                errors.append(r.text)
            writer.write("POST", "/tables/Order_Items/records", {"Order_ID": 1})

    t = threading.Thread(target=write)
    t.start()
    try:
        seen: list[int] = []
        last = 0
        while last < 3003:
            page = api.get(
                "/tables/Order_Items/records",
                **{
                    "q.where": f"PK_ID > {last} AND PK_ID <= 3003",
                    "q.orderBy": "PK_ID",
                    "q.pageSize": 100,
                },
            ).json()["Result"]
            if not page:
                break
            seen += [r["PK_ID"] for r in page]
            last = page[-1]["PK_ID"]
    finally:
        stop.set()
        t.join()
    assert seen == list(range(1, 3004)) and not errors


def test_direct_helpers_do_not_count_calls(caspio_emulator: Emulator) -> None:
    pk = caspio_emulator.insert("Products", {"Name": "Helper"})
    assert caspio_emulator.update("Products", f"PK_ID = {pk}", {"Price": 2}) == 1
    assert caspio_emulator.delete("Products", f"PK_ID = {pk}") == 1
    assert caspio_emulator.calls == 0
    assert isinstance(requests.__version__, str)
