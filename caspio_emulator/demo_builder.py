"""Builds ``demo_account.json``: a small business app, deterministic (``random.Random(2024)``).

Run ``python -m caspio_emulator.demo_builder`` to regenerate the file after changing this
script; the shipped JSON is the output, so the demo needs no generation at load time and
anyone can read the account in one file.

Shape: Customers (segment, list tags, currency credit limit, Yes/No, Text(64000) notes, a
password, TIMESTAMP OnUpdate in Pacific time), Products (no TIMESTAMP: the table a connector
must full-refresh), Orders (two years of dates with growth and seasonality, prefixed
autonumber, random id tracking code, an attachment on a few orders, TIMESTAMP OnUpdate in UTC),
Order_Items, a Customer_Orders view, a Files folder, and one of each metadata object.
"""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "demo_account.json"

# A 1x1 transparent PNG and a minimal PDF, so the Files area serves real bytes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
    b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

SEGMENTS = ["Enterprise", "Mid-Market", "Small Business", "Consumer"]
COUNTRIES = [
    ("United States", ["Seattle", "Austin", "New York", "Chicago"]),
    ("Canada", ["Toronto", "Montréal"]),
    ("United Kingdom", ["London", "Leeds"]),
    ("Germany", ["München", "Köln"]),
    ("Japan", ["東京", "Osaka"]),
    ("Brazil", ["São Paulo"]),
]
FIRST = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Zoë's",
    "O'Brien &",
    "Nørd",
    "Blue Sky",
    "Müller",
    "Café",
    "Pioneer",
    "Summit",
    "Harbor",
    "Quantum",
    "Evergreen",
]
LAST = [
    "Industries",
    "Corp",
    "Sons",
    "GmbH",
    "Labs",
    "Trading",
    "Bakery",
    "Partners",
    "Ltd",
    "Outfitters",
    "Studio",
    "Logistics",
]
CATEGORIES = ["Hardware", "Software", "Services", "Accessories", "Training"]
PRODUCT_WORDS = [
    "Widget",
    "Gadget",
    "Sprocket",
    "Gizmo",
    "Module",
    "Sensor",
    "Router",
    "Cable",
    "License",
    "Support Plan",
    "Workshop",
    "Adapter",
]
ADJ = ["Pro", "Mini", "Max", "Lite", "Plus", "XL", "Eco", "Ultra"]
STATUSES = ["New", "Paid", "Shipped", "Delivered", "Cancelled"]


def ts(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat()


def build(seed: int = 2024) -> dict[str, Any]:
    rng = random.Random(seed)
    start = datetime(2023, 7, 1)
    end = datetime(2025, 6, 30)
    span = (end - start).days

    customers = []
    n_customers = 320
    for i in range(1, n_customers + 1):
        country, cities = COUNTRIES[rng.randrange(len(COUNTRIES))]
        signup = start - timedelta(days=rng.randrange(0, 400)) + timedelta(days=rng.randrange(span))
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if i % 50 == 0:
            name = f'The "Quoted" {name}'
        notes: str | None = None
        if i % 7 == 0:
            notes = f"Prefers email. Account manager: {rng.choice(['Ana', 'Raj', 'Li', 'Chloé'])}."
        if i % 97 == 0:
            notes = ("Long history of orders and support tickets. " * 400)[:15000]
        customers.append(
            {
                "PK_ID": i,
                "Customer_ID": 1000 + i,
                "Name": f"{name} #{i}",
                "Email": f"contact{i}@{name.split()[0].lower().strip(chr(39))}.example.com",
                "Segment": SEGMENTS[rng.choices(range(4), weights=[1, 2, 4, 3])[0]],
                "Country": country,
                "City": rng.choice(cities),
                "Tags": sorted(rng.sample([1, 2, 3, 4], rng.randrange(0, 3))),
                "Credit_Limit": round(rng.choice([500, 1000, 2500, 5000, 10000]) * 1.0, 2),
                "Active": rng.random() > 0.1,
                "Notes": notes,
                "Signup_Date": ts(signup),
                "Portal_Password": f"pw-{i:04d}",
                "Updated": ts(
                    signup + timedelta(days=rng.randrange(0, 200), seconds=rng.randrange(86400))
                ),
            }
        )

    products = []
    for i in range(1, 61):
        cat = CATEGORIES[i % len(CATEGORIES)]
        price = round(rng.uniform(5, 900), 2)
        products.append(
            {
                "PK_ID": i,
                "SKU": f"SKU-{i:04d}",
                "Name": f"{rng.choice(PRODUCT_WORDS)} {rng.choice(ADJ)} {i}",
                "Category": cat,
                "Price": price,
                "Unit_Cost": round(price * rng.uniform(0.35, 0.7), 4),
                "In_Stock": rng.random() > 0.15,
                "Weight_kg": round(rng.uniform(0.05, 12.0), 3)
                if cat in ("Hardware", "Accessories")
                else None,
                "Colors": sorted(rng.sample([1, 2, 3, 4, 5], rng.randrange(0, 4))),
                "Description": f"{cat} item. Ships in {rng.randrange(1, 10)} days.",
                "Photo": f"/Files/products/product_{i % 3 + 1}.png",
            }
        )

    orders = []
    items = []
    item_pk = 0
    n_orders = 1400
    for i in range(1, n_orders + 1):
        # growth over time + a December peak: a revenue-by-month chart worth drawing
        while True:
            day = rng.randrange(span)
            growth = 0.5 + day / span
            d = start + timedelta(days=day)
            season = 1.5 if d.month in (11, 12) else 0.8 if d.month in (1, 2) else 1.0
            if rng.random() < growth * season / 2.25:
                break
        order_dt = d + timedelta(seconds=rng.randrange(8 * 3600, 20 * 3600))
        cust = rng.randrange(1, n_customers + 1)
        status = rng.choices(STATUSES, weights=[1, 3, 4, 8, 1])[0]
        lines: list[dict[str, Any]] = []
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            prod: dict[str, Any] = products[rng.randrange(len(products))]
            qty = rng.choice([1, 1, 1, 2, 3, 5, 10])
            disc = rng.choice([0, 0, 0, 0.05, 0.1])
            line_total = round(prod["Price"] * qty * (1 - disc), 2)
            item_pk += 1
            lines.append(
                {
                    "PK_ID": item_pk,
                    "Order_ID": 5000 + i,
                    "Product_ID": prod["PK_ID"],
                    "Quantity": qty,
                    "Unit_Price": prod["Price"],
                    "Discount": disc,
                    "Line_Total": line_total,
                    "Updated": ts(order_dt + timedelta(minutes=rng.randrange(1, 30))),
                }
            )
        items.extend(lines)
        total = round(sum(x["Line_Total"] for x in lines), 2)
        row: dict[str, Any] = {
            "PK_ID": i,
            "Order_ID": 5000 + i,
            "Order_Number": f"SO-{i:06d}",
            "Customer_ID": 1000 + cust,
            "Order_Date": ts(order_dt),
            "Status": status,
            "Channel": [rng.choices([1, 2, 3], weights=[5, 2, 1])[0]],
            "Total": total,
            "Paid": status in ("Paid", "Shipped", "Delivered"),
            "Shipped_Date": ts(order_dt + timedelta(days=rng.randrange(1, 6)))
            if status in ("Shipped", "Delivered")
            else None,
            "Tracking_Code": "".join(
                rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10)
            ),
            "Updated": ts(
                order_dt + timedelta(days=rng.randrange(0, 20), seconds=rng.randrange(86400))
            ),
        }
        if i % 200 == 0:
            row["Invoice"] = {
                "Name": f"invoice-SO-{i:06d}.pdf",
                "ContentType": "application/pdf",
                "Base64": base64.b64encode(PDF).decode(),
            }
        orders.append(row)

    return {
        "account": {
            "host": "c0demo01.caspio.com",
            "client_id": "demo-id",
            "client_secret": "demo-secret",
        },
        "description": "Demo account of the Caspio emulator: a small business app (deterministic).",
        "tables": {
            "Customers": {
                "note": "Customer master data; Updated is stamped on every change (Pacific time).",
                "fields": [
                    {"Name": "Customer_ID", "Type": "AUTONUMBER", "Label": "Customer #"},
                    {"Name": "Name", "Type": "STRING", "Label": "Customer name"},
                    {"Name": "Email", "Type": "STRING"},
                    {
                        "Name": "Segment",
                        "Type": "STRING",
                        "Description": "Enterprise, Mid-Market, Small Business or Consumer",
                    },
                    {"Name": "Country", "Type": "STRING"},
                    {"Name": "City", "Type": "STRING"},
                    {
                        "Name": "Tags",
                        "Type": "LIST-STRING",
                        "ListField": ["VIP", "Newsletter", "Wholesale", "Churn risk"],
                    },
                    {"Name": "Credit_Limit", "Type": "CURRENCY"},
                    {"Name": "Active", "Type": "YES/NO"},
                    {"Name": "Notes", "Type": "TEXT", "Label": "Notes (Text 64000)"},
                    {"Name": "Signup_Date", "Type": "DATE/TIME"},
                    {"Name": "Portal_Password", "Type": "PASSWORD"},
                    {
                        "Name": "Updated",
                        "Type": "TIMESTAMP",
                        "OnInsert": True,
                        "OnUpdate": True,
                        "TimeZone": "Pacific Standard Time",
                        "Label": "Last change",
                    },
                ],
                "rows": customers,
            },
            "Products": {
                "note": "Catalog. No TIMESTAMP field: incremental loads cannot see its changes.",
                "fields": [
                    {
                        "Name": "SKU",
                        "Type": "PREFIXED AUTONUMBER",
                        "Prefix": "SKU-",
                        "Format": "0001",
                    },
                    {"Name": "Name", "Type": "STRING"},
                    {"Name": "Category", "Type": "STRING"},
                    {"Name": "Price", "Type": "CURRENCY"},
                    {"Name": "Unit_Cost", "Type": "CURRENCY"},
                    {"Name": "In_Stock", "Type": "YES/NO"},
                    {"Name": "Weight_kg", "Type": "NUMBER"},
                    {
                        "Name": "Colors",
                        "Type": "LIST-STRING",
                        "ListField": ["Black", "White", "Red", "Blue", "Green"],
                    },
                    {"Name": "Description", "Type": "TEXT"},
                    {"Name": "Photo", "Type": "FILE"},
                ],
                "rows": products,
            },
            "Orders": {
                "note": "Sales orders; Updated is stamped on insert and update (UTC).",
                "fields": [
                    {"Name": "Order_ID", "Type": "AUTONUMBER"},
                    {
                        "Name": "Order_Number",
                        "Type": "PREFIXED AUTONUMBER",
                        "Prefix": "SO-",
                        "Format": "000001",
                    },
                    {"Name": "Customer_ID", "Type": "INTEGER"},
                    {"Name": "Order_Date", "Type": "DATE/TIME"},
                    {"Name": "Status", "Type": "STRING"},
                    {
                        "Name": "Channel",
                        "Type": "LIST-STRING",
                        "ListField": ["Web", "Phone", "Partner"],
                    },
                    {"Name": "Total", "Type": "CURRENCY"},
                    {"Name": "Paid", "Type": "YES/NO"},
                    {"Name": "Shipped_Date", "Type": "DATE/TIME"},
                    {"Name": "Tracking_Code", "Type": "RANDOM ID", "Format": "0U", "Length": 10},
                    {"Name": "Invoice", "Type": "ATTACHMENT"},
                    {
                        "Name": "Updated",
                        "Type": "TIMESTAMP",
                        "OnInsert": True,
                        "OnUpdate": True,
                        "TimeZone": "UTC",
                    },
                ],
                "rows": orders,
            },
            "Order_Items": {
                "note": "Order lines.",
                "fields": [
                    {"Name": "Order_ID", "Type": "INTEGER"},
                    {"Name": "Product_ID", "Type": "INTEGER"},
                    {"Name": "Quantity", "Type": "INTEGER"},
                    {"Name": "Unit_Price", "Type": "CURRENCY"},
                    {"Name": "Discount", "Type": "NUMBER"},
                    {"Name": "Line_Total", "Type": "CURRENCY"},
                    {"Name": "Item_GUID", "Type": "GUID"},
                    {
                        "Name": "Updated",
                        "Type": "TIMESTAMP",
                        "OnInsert": True,
                        "OnUpdate": True,
                        "TimeZone": "UTC",
                    },
                ],
                "rows": items,
            },
        },
        "views": {
            "Customer_Orders": {
                "note": "Orders with their customer (inner join).",
                "from": ["Orders", "Customers"],
                "join": "Orders.Customer_ID = Customers.Customer_ID",
                "fields": [
                    "Orders.Order_ID",
                    "Orders.Order_Number",
                    "Orders.Order_Date",
                    "Orders.Status",
                    "Orders.Total",
                    "Customers.Customer_ID",
                    "Customers.Name",
                    "Customers.Segment",
                    "Customers.Country",
                    "Orders.Updated",
                    "Customers.Updated",
                ],
            }
        },
        "files": [
            {
                "Path": "/Files/logo.png",
                "Base64": base64.b64encode(PNG).decode(),
                "ContentType": "image/png",
            },
            {
                "Path": "/Files/price-list.csv",
                "Text": "SKU,Name,Price\n"
                + "".join(f"{p['SKU']},{p['Name']},{p['Price']}\n" for p in products[:10]),
                "ContentType": "text/csv",
            },
            {"Path": "/Files/terms.txt", "Text": "Terms & conditions — café edition.\n"},
            {"Path": "/Files/products/product_1.png", "Base64": base64.b64encode(PNG).decode()},
            {"Path": "/Files/products/product_2.png", "Base64": base64.b64encode(PNG).decode()},
            {"Path": "/Files/products/product_3.png", "Base64": base64.b64encode(PNG).decode()},
            {
                "Path": "/Files/Invoices/invoice-template.pdf",
                "Base64": base64.b64encode(PDF).decode(),
                "DateCreated": "2024-02-01T08:00:00",
                "LastModified": "2024-06-01T12:00:00",
            },
            {"Path": "/readme.txt", "Text": "Files area of the demo account.\n"},
        ],
        "folders": ["/Archive"],
        "bridgeApplications": [
            {
                "AppName": "Sales Portal",
                "ExternalKey": "a1b2c3d4-0000-4000-8000-000000000001",
                "DateCreated": "2023-06-01T10:00:00",
                "DateModified": "2024-11-20T16:45:00",
                "DefaultIcon": True,
                "IconFileName": None,
                "datapages": [
                    {
                        "Name": "Customer List",
                        "AppKey": "9A1B0000A1B2C3D4E5F6",
                        "AppName": "Sales Portal",
                        "Path": "/Customers",
                        "Type": "Report",
                        "DateCreated": "2023-06-02T09:00:00",
                        "DateModified": "2024-10-01T11:00:00",
                        "CreatedBy": "admin@example.com",
                        "ModifiedBy": "admin@example.com",
                        "Note": "",
                    },
                    {
                        "Name": "New Order",
                        "AppKey": "9A1B0000A1B2C3D4E5F7",
                        "AppName": "Sales Portal",
                        "Path": "/Orders",
                        "Type": "Submission Form",
                        "DateCreated": "2023-06-03T09:00:00",
                        "DateModified": "2024-10-02T11:00:00",
                        "CreatedBy": "admin@example.com",
                        "ModifiedBy": "ops@example.com",
                        "Note": "Used by the phone team",
                    },
                ],
            }
        ],
        "directories": [
            {
                "Id": "1f2e3d4c-0000-4000-8000-00000000d001",
                "Name": "Portal Users",
                "DateCreated": "2023-06-01T10:00:00",
                "DateUpdated": "2024-12-01T10:00:00",
                "CreatedBy": "admin@example.com",
                "UpdatedBy": "admin@example.com",
                "users": [
                    {
                        "Email": f"user{k}@example.com",
                        "First_Name": n,
                        "_status": s,
                        "_sign_in_method": "Caspio",
                        "_2fa_status": "Unavailable",
                    }
                    for k, (n, s) in enumerate(
                        [
                            ("Ana", "Active"),
                            ("Raj", "Active"),
                            ("Li", "Locked"),
                            ("Zoë", "ActivationPending"),
                            ("Sam", "Active"),
                            ("Chloé", "Suspended"),
                        ],
                        start=1,
                    )
                ],
            }
        ],
        "dataImportExportTasks": [
            {
                "Name": "Nightly orders export",
                "ExternalKey": "T0000001",
                "Status": "Ready",
                "TaskTimeZone": "Pacific Standard Time",
                "Frequency": "Every day",
                "Note": "to SFTP",
            }
        ],
        "outgoingWebhooks": [
            {
                "Id": "wh-0001",
                "Status": "Active",
                "Name": "Order changes",
                "Description": "Notify ERP",
                "OutgoingUrls": ["https://erp.example.com/hooks/caspio"],
                "CallThrottling": 10,
                "LastModified": "2024-05-01T10:00:00",
                "ModifiedBy": "admin@example.com",
                "DateCreated": "2024-04-01T10:00:00",
                "CreatedBy": "admin@example.com",
                "events": [
                    {
                        "Id": "ev-0001",
                        "Type": "table.recordUpdate",
                        "Status": "Active",
                        "ObjectName": "Orders",
                        "ObjectId": "Orders",
                        "ObjectFields": ["Status"],
                        "EventSources": ["RESTAPIs"],
                        "CustomPayloadFields": [],
                        "CustomPayloadTemplate": None,
                        "LastModified": "2024-05-01T10:00:00",
                        "ModifiedBy": "admin@example.com",
                        "DateCreated": "2024-04-01T10:00:00",
                        "CreatedBy": "admin@example.com",
                    }
                ],
            }
        ],
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
