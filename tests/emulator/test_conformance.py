"""Every implemented operation's answer validates against Caspio's OpenAPI schemas.

The schemas live in the repository (``tests/openapi``), so these tests run in every clone; a
skip here fails the suite (``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.openapi import document, validate

from .conftest import Api

_doc = document  # the name tests/emulator/test_field_design.py imports

CASES = [
    ("/v3/tables", "/tables", {}),
    ("/v3/tables/{tableName}", "/tables/Customers", {}),
    ("/v3/tables/{tableName}/fields", "/tables/Customers/fields", {}),
    ("/v3/tables/{tableName}/fields", "/tables/Big/fields", {}),
    ("/v3/tables/{tableName}/fields/{fieldName}", "/tables/Customers/fields/Tags", {}),
    ("/v3/tables/{tableName}/records", "/tables/Customers/records", {}),
    (
        "/v3/tables/{tableName}/records",
        "/tables/Big/records",
        {"q.pageSize": 50, "q.pageNumber": 2, "q.getPaginationInfo": "true"},
    ),
    ("/v3/tables/{tableName}/records", "/tables/Orders/records", {"q.limit": 1000}),
    ("/v3/tables/{tableName}/passwordFields", "/tables/Customers/passwordFields", {}),
    (
        "/v3/tables/{tableName}/attachments/{attachmentFieldName}/fileInfo",
        "/tables/Orders/attachments/Invoice/fileInfo",
        {},
    ),
    ("/v3/views", "/views", {}),
    ("/v3/views/{viewName}", "/views/Customer_Orders", {}),
    ("/v3/views/{viewName}/fields", "/views/Customer_Orders/fields", {}),
    ("/v3/views/{viewName}/fields/{fieldName}", "/views/Customer_Orders/fields/Name", {}),
    (
        "/v3/views/{viewName}/records",
        "/views/Customer_Orders/records",
        {"q.pageSize": 10, "q.getPaginationInfo": "true"},
    ),
    ("/v3/files", "/files", {}),
    ("/v3/files/folders", "/files/folders", {}),
    ("/v3/bridgeApplications", "/bridgeApplications", {}),
    ("/v3/directories", "/directories", {}),
    ("/v3/dataImportExportTasks", "/dataImportExportTasks", {}),
    ("/v3/dataImportExportTasks/{externalKey}", "/dataImportExportTasks/T0000001", {}),
    ("/v3/outgoingWebhooks", "/outgoingWebhooks", {}),
    ("/v3/outgoingWebhooks/{webhookId}", "/outgoingWebhooks/wh-0001", {}),
    ("/v3/outgoingWebhooks/{webhookId}/events", "/outgoingWebhooks/wh-0001/events", {}),
    (
        "/v3/outgoingWebhooks/{webhookId}/events/{eventId}",
        "/outgoingWebhooks/wh-0001/events/ev-0001",
        {},
    ),
]


@pytest.mark.parametrize(("template", "path", "params"), CASES, ids=[c[1] for c in CASES])
def test_get_validates(api: Api, template: str, path: str, params: dict[str, Any]) -> None:
    r = api.get(path, **params)
    assert r.status_code == 200, r.text
    validate(template, r.json())


def test_files_keyed_endpoints_validate(api: Api) -> None:
    folders = api.get("/files/folders").json()["Result"]
    files_folder = next(f for f in folders if f["Name"] == "Files")
    validate(
        "/v3/files/folders/{externalKey}",
        api.get(f"/files/folders/{files_folder['ExternalKey']}").json(),
    )
    listing = api.get("/files", externalKey=files_folder["ExternalKey"]).json()
    validate("/v3/files", listing)
    key = listing["Result"][0]["ExternalKey"]
    validate("/v3/files/{externalKey}/fileInfo", api.get(f"/files/{key}/fileInfo").json())
    validate(
        "/v3/files/path/fileInfo",
        api.get("/files/path/fileInfo", filePath="/Files/logo.png").json(),
    )


def test_metadata_keyed_endpoints_validate(api: Api) -> None:
    apps = api.get("/bridgeApplications").json()["Result"]
    key = apps[0]["ExternalKey"]
    validate("/v3/bridgeApplications/{externalKey}", api.get(f"/bridgeApplications/{key}").json())
    pages = api.get(f"/bridgeApplications/{key}/datapages").json()
    validate("/v3/bridgeApplications/{externalKey}/datapages", pages)
    app_key = pages["Result"][0]["AppKey"]
    validate(
        "/v3/bridgeApplications/{externalKey}/datapages/{appKey}",
        api.get(f"/bridgeApplications/{key}/datapages/{app_key}").json(),
    )
    dirs = api.get("/directories").json()["Result"]
    users = api.get(f"/directories/{dirs[0]['Id']}/users", **{"q.getPaginationInfo": "true"}).json()
    validate("/v3/directories/{directoryId}/users", users)


def test_every_field_object_has_every_base_column_key(api: Api) -> None:
    props = set(document()["components"]["schemas"]["BaseColumnResult"]["properties"])
    for f in api.get("/views/Customer_Orders/fields").json()["Result"]:
        assert "TableFieldName" in f
        assert set(f) <= props


def test_put_delete_answers_validate(fresh_api: Api) -> None:
    r = fresh_api.write(
        "PUT", "/tables/Products/records", {"In_Stock": True}, **{"q.where": "PK_ID = 1"}
    )
    validate("/v3/tables/{tableName}/records", r.json(), method="put")
    r = fresh_api.write("POST", "/tables/Products/records", {"Name": "x"}, response="rows")
    validate("/v3/tables/{tableName}/records", r.json(), method="post", status="201")
    r = fresh_api.write("DELETE", "/tables/Products/records", **{"q.where": "Name = 'x'"})
    validate("/v3/tables/{tableName}/records", r.json(), method="delete")
