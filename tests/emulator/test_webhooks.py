"""Outgoing webhooks: the /outgoingWebhooks routes (validated against Caspio's OpenAPI) and
delivery to a real loopback HTTP receiver (README section 7, docs/emulator.md guesses 49-55).

Every test runs against its own emulator with a short redelivery schedule, so nothing here
sleeps longer than a failed delivery's backoff (tens of milliseconds)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from caspio_emulator import DEMO_DATASET, Emulator
from caspio_emulator.webhooks import EVENT_SOURCES, REQUEST_SCHEMAS
from tests.openapi import validate

from .conftest import Api

PAYLOAD_KEYS = [
    "eventId",
    "messageId",
    "webhookId",
    "callId",
    "accountId",
    "secret",
    "eventDate",
    "eventType",
    "objectName",
    "data",
]
EVENT_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?$")  # no offset, no Z


class Receiver:
    """A loopback HTTP server that records every POST and answers scripted statuses."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.script: list[int] = []  # statuses for the next calls; then 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.calls.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "body": json.loads(body),
                        }
                    )
                    status = receiver.script.pop(0) if receiver.script else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c["body"] for c in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(
        dataset=DEMO_DATASET, webhook_retry_seconds=[0.02, 0.04], webhook_timeout=2.0
    ) as e:
        yield e


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu)


def make_hook(api: Api, url: str, name: str = "hook") -> dict[str, Any]:
    r = api.write("POST", "/outgoingWebhooks", {"Name": name, "OutgoingUrls": [url]})
    assert r.status_code == 201, r.text
    return dict(r.json())


def subscribe(api: Api, hook_id: str, **body: Any) -> dict[str, Any]:
    r = api.write("POST", f"/outgoingWebhooks/{hook_id}/events", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def flush(emu: Emulator) -> None:
    assert emu.flush_webhooks(timeout=10), "deliveries still pending after 10 s"


# ---------------------------------------------------------------- management


def test_webhook_and_event_round_trips_validate(api: Api, receiver: Receiver) -> None:
    created = api.write(
        "POST",
        "/outgoingWebhooks",
        {"Name": "ERP", "Description": "d", "OutgoingUrls": [receiver.url()], "CallThrottling": 5},
    )
    assert created.status_code == 201 and created.headers["X-Caspio-Request-ID"]
    hook = created.json()
    validate("/v3/outgoingWebhooks", hook, method="post", status="201")
    assert hook["Id"] and len(hook["Secret"]) >= 16 and hook["CallThrottling"] == 5
    hid = hook["Id"]

    listing = api.get("/outgoingWebhooks").json()
    validate("/v3/outgoingWebhooks", listing)
    assert [h["Name"] for h in listing] == ["Order changes", "ERP"]  # the demo's, then ours
    assert all("Secret" not in h for h in listing)  # only the creation answer carries it

    one = api.get(f"/outgoingWebhooks/{hid}").json()
    validate("/v3/outgoingWebhooks/{webhookId}", one)
    assert (one["Events"], one["Messages"], one["Status"]) == (0, 0, "Active")

    put = api.write("PUT", f"/outgoingWebhooks/{hid}", {"Description": "new", "Enabled": False})
    assert put.status_code == 200, put.text
    validate("/v3/outgoingWebhooks/{webhookId}", put.json(), method="put")
    assert (put.json()["Description"], put.json()["Name"]) == ("new", "ERP")
    assert put.json()["Status"] == "Inactive"

    ev = api.write(
        "POST",
        f"/outgoingWebhooks/{hid}/events",
        {"EventType": "table.recordUpdate", "ObjectName": "products", "ObjectFields": ["price"]},
    )
    assert ev.status_code == 201, ev.text
    validate("/v3/outgoingWebhooks/{webhookId}/events", ev.json(), method="post", status="201")
    event = ev.json()
    assert (event["ObjectName"], event["ObjectFields"], event["Status"]) == (
        "Products",
        ["Price"],
        "Active",
    )
    assert event["EventSources"] == list(EVENT_SOURCES)  # none given: all of them
    eid = event["Id"]

    events = api.get(f"/outgoingWebhooks/{hid}/events").json()
    validate("/v3/outgoingWebhooks/{webhookId}/events", events)
    assert [e["Id"] for e in events] == [eid]
    got = api.get(f"/outgoingWebhooks/{hid}/events/{eid}").json()
    validate("/v3/outgoingWebhooks/{webhookId}/events/{eventId}", got)

    put = api.write(
        "PUT",
        f"/outgoingWebhooks/{hid}/events/{eid}",
        {"EventType": "table.recordDelete", "ObjectName": "Products", "Enabled": False},
    )
    assert put.status_code == 200, put.text
    validate("/v3/outgoingWebhooks/{webhookId}/events/{eventId}", put.json(), method="put")
    assert (put.json()["Type"], put.json()["Status"], put.json()["Id"]) == (
        "table.recordDelete",
        "Inactive",
        eid,
    )

    assert api.write("DELETE", f"/outgoingWebhooks/{hid}/events/{eid}").status_code == 204
    assert api.get(f"/outgoingWebhooks/{hid}/events").json() == []
    assert api.write("DELETE", f"/outgoingWebhooks/{hid}").status_code == 204
    gone = api.get(f"/outgoingWebhooks/{hid}")
    assert gone.status_code == 404
    err = gone.json()
    assert err["Code"] == "ObjectNotFound" and set(err) == {
        "Code",
        "Message",
        "Resource",
        "RequestId",
    }
    assert err["RequestId"] == gone.headers["X-Caspio-Request-ID"]


@pytest.mark.parametrize(
    ("path", "method", "body", "needle"),
    [
        ("", "POST", {"Name": "x", "OutgoingUrls": ["U"], "Secret": "mine"}, "Unknown property"),
        ("", "POST", {"Name": "x", "OutgoingUrls": "U"}, "OutgoingUrls"),
        ("", "POST", {"Name": 5, "OutgoingUrls": ["U"]}, "Name"),
        ("", "POST", {"OutgoingUrls": ["U"]}, "Name is required"),
        ("", "POST", {"Name": "x"}, "OutgoingUrls is required"),
        ("", "POST", {"Name": "x", "OutgoingUrls": ["U"], "CallThrottling": 0}, "CallThrottling"),
        ("", "POST", {"Name": "x", "OutgoingUrls": ["U"], "CallThrottling": "5"}, "int32"),
        ("", "POST", {"Name": "Order changes", "OutgoingUrls": ["U"]}, "already exists"),
        ("/H", "PUT", {}, "At least one"),
        ("/H", "PUT", {"Enabled": "yes"}, "boolean"),
        ("/H/events", "POST", {"ObjectName": "Products"}, "EventType is required"),
        ("/H/events", "POST", {"EventType": "table.x", "ObjectName": "Products"}, "EventType"),
        ("/H/events", "POST", {"EventType": "table.recordInsert"}, "ObjectName is required"),
        ("/H/events", "POST", {"EventType": "table.recordInsert", "ObjectName": "Nope"}, "table"),
        (
            "/H/events",
            "POST",
            {"EventType": "table.recordInsert", "ObjectName": "Products", "ObjectFields": ["Name"]},
            "only to table.recordUpdate",
        ),
        (
            "/H/events",
            "POST",
            {"EventType": "table.recordUpdate", "ObjectName": "Products", "ObjectFields": ["X"]},
            "not a field",
        ),
        (
            "/H/events",
            "POST",
            {"EventType": "table.recordInsert", "ObjectName": "Products", "EventSources": ["API"]},
            "EventSources",
        ),
    ],
)
def test_bad_bodies_are_400_incorrect_body_parameter(
    api: Api, receiver: Receiver, path: str, method: str, body: dict[str, Any], needle: str
) -> None:
    hook = make_hook(api, receiver.url("/first"))
    body = json.loads(json.dumps(body).replace('"U"', json.dumps(receiver.url("/second"))))
    r = api.write(method, "/outgoingWebhooks" + path.replace("/H", "/" + hook["Id"], 1), body)
    assert r.status_code == 400, r.text
    assert r.json()["Code"] == "IncorrectBodyParameter" and needle in r.json()["Message"]
    assert len(api.get("/outgoingWebhooks").json()) == 2  # nothing was created
    assert api.get(f"/outgoingWebhooks/{hook['Id']}/events").json() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "http://hooks.example.com/in",
        "http://10.0.0.1:8080/in",
        "https://127.0.0.1/in",  # the emulator speaks no TLS: http only
        "ftp://localhost/in",
        "http://0.0.0.0:9/in",
    ],
)
def test_non_loopback_urls_are_refused(api: Api, emu: Emulator, url: str) -> None:
    r = api.write("POST", "/outgoingWebhooks", {"Name": "x", "OutgoingUrls": [url]})
    assert r.status_code == 400, r.text
    assert r.json()["Code"] == "IncorrectBodyParameter"
    assert "only to loopback http URLs" in r.json()["Message"]
    hook = make_hook(api, "http://localhost:9/ok")  # localhost is loopback
    r = api.write("PUT", f"/outgoingWebhooks/{hook['Id']}", {"OutgoingUrls": [url]})
    assert r.status_code == 400 and "loopback" in r.json()["Message"]
    assert api.get(f"/outgoingWebhooks/{hook['Id']}").json()["OutgoingUrls"] == [
        "http://localhost:9/ok"
    ]


def test_a_url_already_used_by_another_webhook_is_refused(api: Api, receiver: Receiver) -> None:
    make_hook(api, receiver.url())
    r = api.write("POST", "/outgoingWebhooks", {"Name": "two", "OutgoingUrls": [receiver.url()]})
    assert r.status_code == 400 and "already used" in r.json()["Message"]


def test_management_calls_are_metered_like_any_api_call(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    emu.reset_log()
    emu.script_faults(["429"])
    r = api.write("POST", "/outgoingWebhooks", {"Name": "x", "OutgoingUrls": [receiver.url()]})
    assert r.status_code == 429 and r.json()["Code"] == "TooManyRequests"
    assert len(api.get("/outgoingWebhooks").json()) == 1  # the 429 created nothing
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordInsert", ObjectName="Products")
    assert emu.calls == 4
    assert [(e.method, e.path.rsplit("/", 1)[-1], e.status) for e in emu.log] == [
        ("POST", "outgoingWebhooks", 429),
        ("GET", "outgoingWebhooks", 200),
        ("POST", "outgoingWebhooks", 201),
        ("POST", "events", 201),
    ]
    emu.configure(quota=0)
    r = api.get("/outgoingWebhooks")
    assert r.status_code == 403 and r.json()["Code"] == "ApiCallsLimitExceeded"
    emu.configure(quota=None)
    calls = emu.calls
    emu.insert("Products", {"Name": "metered?"})
    flush(emu)
    assert len(receiver.bodies()) == 1
    assert emu.calls == calls  # a delivery is Caspio calling out: not an API call


# ---------------------------------------------------------------- delivery


def test_rest_insert_update_delete_send_the_documented_payloads(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    emu.set_clock(None)
    hook = make_hook(api, receiver.url("/in?via=test"))
    events = {
        kind: subscribe(
            api,
            hook["Id"],
            EventType=f"table.record{kind}",
            ObjectName="Products",
            EventSources=["RESTAPIs"],
        )["Id"]
        for kind in ("Insert", "Update", "Delete")
    }
    r = api.write("POST", "/tables/Products/records", {"Name": "Hooked", "Price": 9.5})
    assert r.status_code == 201
    row = api.get("/tables/Products/records", **{"q.where": "Name = 'Hooked'"}).json()["Result"][0]
    where = {"q.where": f"PK_ID = {row['PK_ID']}"}
    assert api.write("PUT", "/tables/Products/records", {"Price": 10.25}, **where).ok
    updated = api.get("/tables/Products/records", **where).json()["Result"][0]
    assert api.write("DELETE", "/tables/Products/records", **where).json()["RecordsAffected"] == 1
    flush(emu)

    bodies = receiver.bodies()
    assert [b["eventType"] for b in bodies] == [
        "table.recordInsert",
        "table.recordUpdate",
        "table.recordDelete",
    ]
    assert [c["path"] for c in receiver.calls] == ["/in?via=test"] * 3
    assert {c["content_type"] for c in receiver.calls} == {"application/json; charset=utf-8"}
    for body, kind, data in zip(
        bodies, ("Insert", "Update", "Delete"), (row, updated, updated), strict=True
    ):
        assert list(body) == PAYLOAD_KEYS
        assert body["secret"] == hook["Secret"]
        assert body["webhookId"] == hook["Id"]
        assert body["eventId"] == events[kind]
        assert body["accountId"] == emu.account_host.split(".")[0]  # c0demo01 (guess 53)
        assert body["objectName"] == "Products"
        assert EVENT_DATE.match(body["eventDate"]), body["eventDate"]
        assert body["data"] == [data]  # the record as the records endpoint shows it
        assert body["messageId"] and body["callId"]
    assert len({b["messageId"] for b in bodies}) == 3
    assert updated["Price"] == 10.25 and row["Price"] == 9.5
    sent = emu.webhook_deliveries()
    assert [(d.status, d.attempt, d.final) for d in sent] == [(200, 1, True)] * 3
    assert [d.payload for d in sent] == bodies
    info = api.get(f"/outgoingWebhooks/{hook['Id']}").json()
    assert (info["Messages"], info["Calls"], info["Errors"], info["Events"]) == (3, 3, 0, 3)


def test_an_update_that_changes_nothing_fires_nothing(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordUpdate", ObjectName="Customers")
    where = {"q.where": "PK_ID = 1"}
    before = api.get("/tables/Customers/records", **where).json()["Result"][0]
    r = api.write("PUT", "/tables/Customers/records", {"Segment": before["Segment"]}, **where)
    assert r.json()["RecordsAffected"] == 1  # the row matched (and its OnUpdate stamp moved)
    emu.update("Customers", "PK_ID = 1", {"Segment": before["Segment"]})
    flush(emu)
    assert receiver.bodies() == [] and emu.webhook_deliveries() == []
    api.write("PUT", "/tables/Customers/records", {"Segment": "Changed"}, **where)
    flush(emu)
    assert [b["data"][0]["Segment"] for b in receiver.bodies()] == ["Changed"]


def test_object_fields_limit_which_changes_fire(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(
        api,
        hook["Id"],
        EventType="table.recordUpdate",
        ObjectName="Products",
        ObjectFields=["Price"],
        CustomPayloadFields=["Name"],
    )
    emu.update("Products", "PK_ID = 2", {"Name": "Renamed"})
    emu.update("Products", "PK_ID = 2", {"Price": 1.5})
    flush(emu)
    assert [b["data"] for b in receiver.bodies()] == [[{"PK_ID": 2, "Name": "Renamed"}]]


def test_delete_all_fires_nothing_but_a_delete_with_a_where_does(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordDelete", ObjectName="Products")
    assert emu.delete("Products", "PK_ID <= 2") == 2
    flush(emu)
    assert [b["data"][0]["PK_ID"] for b in receiver.bodies()] == [1, 2]
    assert emu.delete_all("Products") == 58
    assert emu.table_rows("Products") == []
    emu.generate("Products", 3)  # a bulk load fires nothing either
    flush(emu)
    assert len(receiver.bodies()) == 2 and len(emu.webhook_deliveries()) == 2


def test_event_sources_are_honoured(api: Api, emu: Emulator, receiver: Receiver) -> None:
    rest_only = make_hook(api, receiver.url("/rest"), "rest")
    subscribe(
        api,
        rest_only["Id"],
        EventType="table.recordInsert",
        ObjectName="Products",
        EventSources=["restapis"],
    )
    sheet_only = make_hook(api, receiver.url("/sheet"), "sheet")
    subscribe(
        api,
        sheet_only["Id"],
        EventType="table.recordInsert",
        ObjectName="Products",
        EventSources=["Datasheet", "DataPages"],
    )
    api.write("POST", "/tables/Products/records", {"Name": "via REST"})
    emu.insert("Products", {"Name": "via Python"})
    flush(emu)
    got = sorted((c["path"], c["body"]["data"][0]["Name"]) for c in receiver.calls)
    assert got == [("/rest", "via REST"), ("/sheet", "via Python")]


def test_inactive_events_and_webhooks_fire_nothing(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordInsert", ObjectName="Products")
    api.write("PUT", f"/outgoingWebhooks/{hook['Id']}", {"Enabled": False})
    emu.insert("Products", {"Name": "quiet"})
    api.write("PUT", f"/outgoingWebhooks/{hook['Id']}", {"Enabled": True})
    emu.insert("Products", {"Name": "loud"})
    flush(emu)
    assert [b["data"][0]["Name"] for b in receiver.bodies()] == ["loud"]


def test_a_failing_receiver_gets_redeliveries_of_the_same_message(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordInsert", ObjectName="Products")
    receiver.script = [500, 500]
    emu.insert("Products", {"Name": "retry me"})
    flush(emu)
    bodies = receiver.bodies()
    assert len(bodies) == 3
    assert len({b["messageId"] for b in bodies}) == 1  # one message ...
    assert len({b["callId"] for b in bodies}) == 3  # ... three calls
    assert [{k: v for k, v in b.items() if k != "callId"} for b in bodies] == [
        {k: v for k, v in bodies[0].items() if k != "callId"}
    ] * 3
    sent = emu.webhook_deliveries()
    assert [(d.attempt, d.status, d.final) for d in sent] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert sent[1].time - sent[0].time >= 0.015  # the configured backoff (0.02 s, then 0.04 s)
    info = api.get(f"/outgoingWebhooks/{hook['Id']}").json()
    assert (info["Messages"], info["Calls"], info["Errors"]) == (1, 3, 2)


def test_redelivery_gives_up_after_the_schedule(emu: Emulator, api: Api) -> None:
    emu.configure(webhook_retry_seconds=[0.01])
    dead = Receiver()
    url = dead.url()
    dead.close()  # nobody listens there now: connection refused
    hook = make_hook(api, url)
    subscribe(api, hook["Id"], EventType="table.recordInsert", ObjectName="Products")
    emu.insert("Products", {"Name": "nobody home"})
    flush(emu)
    sent = emu.webhook_deliveries()
    assert [(d.attempt, d.status, d.final) for d in sent] == [(1, None, False), (2, None, True)]
    assert all(d.error and "Refused" in d.error for d in sent)
    assert sent[0].message_id == sent[1].message_id


def test_a_slow_receiver_never_blocks_the_write(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    hook = make_hook(api, receiver.url())
    subscribe(api, hook["Id"], EventType="table.recordInsert", ObjectName="Products")
    receiver.delay = 0.3
    start = time.perf_counter()
    assert api.write("POST", "/tables/Products/records", {"Name": "fast"}).status_code == 201
    assert emu.insert("Products", {"Name": "fast too"}) > 0
    assert time.perf_counter() - start < 0.25  # two deliveries take 0.6 s
    flush(emu)
    assert len(receiver.bodies()) == 2


def test_dataset_webhooks_to_other_hosts_are_never_called(api: Api, emu: Emulator) -> None:
    """The demo's webhook posts Orders status changes made through the REST API to
    https://erp.example.com: recorded as not sent, no connection attempted."""
    r = api.write("PUT", "/tables/Orders/records", {"Status": "Audited"}, **{"q.where": "PK_ID=1"})
    assert r.json()["RecordsAffected"] == 1
    flush(emu)
    sent = emu.webhook_deliveries()
    assert len(sent) == 1 and sent[0].status is None and sent[0].final
    assert sent[0].error and sent[0].error.startswith("not sent") and "loopback" in sent[0].error
    assert sent[0].url == "https://erp.example.com/hooks/caspio"
    assert sent[0].payload["data"][0]["Status"] == "Audited"


def test_request_schemas_match_caspios_openapi() -> None:
    """webhooks.REQUEST_SCHEMAS is the OpenAPI's request schemas, property for property."""
    source = (
        Path(__file__).resolve().parents[3] / "shared" / "caspio" / "caspio-rest-v3-openapi.json"
    )
    if not source.exists():
        pytest.skip(f"{source} is not in this clone")
    schemas = json.loads(source.read_text())["components"]["schemas"]
    kinds = {
        "string": "string",
        "boolean": "boolean",
        "integer": "int32",
        "array": "array of strings",
    }
    for name, props in REQUEST_SCHEMAS.items():
        doc = schemas[name]
        assert doc["additionalProperties"] is False
        assert {k: kinds[v["type"]] for k, v in doc["properties"].items()} == props, name
    assert schemas["WebhookEventRequest"]["required"] == ["EventType"]
