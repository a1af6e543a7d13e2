"""DATASET.md loading (strict messages), the generator, the demo account, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from caspio_emulator import DEMO_DATASET, DatasetError, Emulator, load_dataset
from caspio_emulator.dataset import generate
from caspio_emulator.store import Store

DOC_EXAMPLE: dict[str, Any] = {
    "account": {
        "host": "c1abc123.caspio.com",
        "client_id": "demo-id",
        "client_secret": "demo-secret",
    },
    "tables": {
        "Customers": {
            "note": "optional table note",
            "fields": [
                {"Name": "Customer_ID", "Type": "AUTONUMBER", "Unique": True},
                {"Name": "Name", "Type": "STRING", "Label": "Customer name"},
                {"Name": "Balance", "Type": "CURRENCY"},
                {"Name": "Active", "Type": "YES/NO"},
                {
                    "Name": "Tags",
                    "Type": "LIST-STRING",
                    "ListField": ["VIP", "Wholesale", "Retail"],
                },
                {"Name": "Secret", "Type": "PASSWORD"},
                {
                    "Name": "Updated",
                    "Type": "TIMESTAMP",
                    "OnInsert": True,
                    "OnUpdate": True,
                    "TimeZone": "Pacific Standard Time",
                },
            ],
            "rows": [
                {
                    "PK_ID": 1,
                    "Name": "O'Brien & Sons",
                    "Balance": 12.3456,
                    "Active": True,
                    "Tags": [1, 3],
                    "Secret": "x",
                    "Updated": "2024-03-10T01:59:59",
                },
                {"Name": "Zoë", "Balance": None, "Active": False, "Tags": []},
            ],
        },
        "Orders": {
            "fields": [
                {"Name": "Order_ID", "Type": "AUTONUMBER"},
                {"Name": "Customer_ID", "Type": "INTEGER"},
                {"Name": "Total", "Type": "NUMBER"},
            ],
            "rows": [{"Customer_ID": 1, "Total": 5}, {"Customer_ID": 2, "Total": 7.5}],
        },
    },
    "views": {
        "Customer_Orders": {
            "from": ["Orders", "Customers"],
            "join": "Orders.Customer_ID = Customers.Customer_ID",
            "fields": ["Orders.Order_ID", "Orders.Total", "Customers.Name"],
        }
    },
}


def test_the_documented_example_loads() -> None:
    with Emulator(dataset=DOC_EXAMPLE) as emu:
        assert emu.client_id == "demo-id"
        rows = emu.table_rows("Customers")
        assert (
            rows[0]["Tags"] == {"1": "VIP", "3": "Retail"}
            and rows[0]["Updated"] == "2024-03-10T01:59:59"
        )
        assert rows[1]["PK_ID"] == 2 and rows[1]["Customer_ID"] == 2 and rows[1]["Tags"] is None
        assert rows[1]["Updated"]  # stamped at load time
        view = emu.table_rows("Customer_Orders")
        assert view == [
            {"PK_ID": "1,1", "Order_ID": 1, "Total": 5.0, "Name": "O'Brien & Sons"},
            {"PK_ID": "2,2", "Order_ID": 2, "Total": 7.5, "Name": "Zoë"},
        ]


def _with(mutator: Any) -> dict[str, Any]:
    ds = json.loads(json.dumps(DOC_EXAMPLE))
    mutator(ds)
    return ds


BAD = [
    (
        lambda d: d["tables"]["Customers"]["fields"].append({"Name": "PK_ID", "Type": "INTEGER"}),
        "Customers",
        "PK_ID",
    ),
    (
        lambda d: d["tables"]["Customers"]["fields"].append({"Name": "X", "Type": "BLOB"}),
        "field 'X'",
        "Type",
    ),
    (
        lambda d: d["tables"]["Customers"]["fields"].append({"Name": "name", "Type": "STRING"}),
        "field 'name'",
        "duplicate",
    ),
    (lambda d: d["tables"]["Customers"]["rows"].append({"Nope": 1}), "row 3", "Nope"),
    (
        lambda d: d["tables"]["Customers"]["rows"].append({"Balance": "lots"}),
        "row 3, field 'Balance'",
        "number",
    ),
    (
        lambda d: d["tables"]["Customers"]["rows"].append({"Tags": [9]}),
        "row 3, field 'Tags'",
        "ListField",
    ),
    (lambda d: d["tables"]["Customers"]["rows"].append({"PK_ID": 1}), "row 3", "duplicate PK_ID"),
    (
        lambda d: d["tables"]["Customers"]["fields"][6].update(TimeZone="Mars Standard Time"),
        "field 'Updated'",
        "time zone",
    ),
    (
        lambda d: d["views"]["Customer_Orders"].update(fields=["Orders.Nope"]),
        "Customer_Orders",
        "Orders.Nope",
    ),
    (
        lambda d: d["views"]["Customer_Orders"].update(join="Orders.X = Customers.Customer_ID"),
        "Customer_Orders",
        "Orders.X",
    ),
    (lambda d: d.update(extra=1), "top-level", "extra"),
]


@pytest.mark.parametrize(("mutator", "where", "what"), BAD)
def test_bad_datasets_are_rejected_with_precise_messages(
    mutator: Any, where: str, what: str
) -> None:
    with pytest.raises(DatasetError) as exc:
        Emulator(dataset=_with(mutator))
    assert where in str(exc.value) and what in str(exc.value)


def test_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text("{nope")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(p)


def test_generator_is_deterministic_and_covers_every_type() -> None:
    a, b = Store(), Store()
    generate(a, "Wide", 3000, seed=1)
    generate(b, "Wide", 3000, seed=1)
    ra, rb = a.all_rows(a.table("Wide").scope), b.all_rows(b.table("Wide").scope)  # type: ignore[union-attr]
    assert ra == rb and len(ra) == 3000
    types = {f.Type for f in a.table("Wide").fields}  # type: ignore[union-attr]
    assert {
        "STRING",
        "TEXT",
        "NUMBER",
        "INTEGER",
        "CURRENCY",
        "DATE/TIME",
        "YES/NO",
        "FILE",
        "TIMESTAMP",
        "AUTONUMBER",
        "PREFIXED AUTONUMBER",
        "GUID",
        "RANDOM ID",
        "PASSWORD",
        "LIST-STRING",
        "LIST-NUMBER",
    } <= types
    updated = next(f for f in a.table("Wide").fields if f.Name == "Updated")  # type: ignore[union-attr]
    assert updated.OnUpdate
    for col in ("Name", "Notes", "Amount", "Active", "Event_Date", "Tags"):
        values = [r[col] for r in ra]
        assert None in values and len({json.dumps(v) for v in values}) > 2, col
    texts = [r["Notes"] for r in ra if r["Notes"]]
    assert max(map(len, texts)) > 4000
    assert any("'" in r["Name"] for r in ra if r["Name"]) and any(
        '"' in r["Name"] for r in ra if r["Name"]
    )
    assert any(any(ord(ch) > 127 for ch in r["Name"]) for r in ra if r["Name"])
    c = Store()
    generate(c, "Wide", 3000, seed=2)
    assert c.all_rows(c.table("Wide").scope) != ra  # type: ignore[union-attr]


def test_generate_fills_an_existing_table() -> None:
    with Emulator(dataset=DEMO_DATASET, generate={"Products": 100}) as emu:
        rows = emu.table_rows("Products")
        assert len(rows) == 160 and rows[-1]["SKU"] == "SKU-0160"
        assert set(rows[-1]) == set(rows[0])


def test_demo_account_shape() -> None:
    with Emulator(dataset=DEMO_DATASET) as emu:
        tables = {t.name: t for t in emu.store.tables.values()}
        assert set(tables) == {"Customers", "Products", "Orders", "Order_Items"}
        with_on_update = {
            n
            for n, t in tables.items()
            if any(f.Type == "TIMESTAMP" and f.OnUpdate for f in t.fields)
        }
        assert with_on_update == {"Customers", "Orders", "Order_Items"}
        total = sum(len(emu.table_rows(n)) for n in tables)
        assert 2000 < total < 10000
        months = {r["Order_Date"][:7] for r in emu.table_rows("Orders")}
        assert len(months) >= 23
        assert {r["Segment"] for r in emu.table_rows("Customers")} >= {"Enterprise", "Consumer"}


def test_cli_serves_and_prints_credentials(tmp_path: Path) -> None:
    ds = tmp_path / "d.json"
    ds.write_text(json.dumps(DOC_EXAMPLE))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caspio_emulator.cli",
            "serve",
            "--port",
            "0",
            "--data",
            str(ds),
            "--generate",
            "Big=50",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        base = next(line.split()[-1] for line in lines if "base URL" in line)
        assert any("demo-secret" in line for line in lines)
        tok = requests.post(
            base + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-id", "demo-secret"),
            timeout=10,
        ).json()["access_token"]
        r = requests.get(
            base + "/integrations/rest/v3/tables",
            headers={"Authorization": f"Bearer {tok}"},
            timeout=10,
        )
        assert r.json() == {"Result": ["Customers", "Orders", "Big"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
