"""Files area, attachments and metadata lists (README section 7)."""

from __future__ import annotations

from .conftest import Api


def folder_key(api: Api, name: str) -> str:
    return next(
        f["ExternalKey"] for f in api.get("/files/folders").json()["Result"] if f["Name"] == name
    )


def test_root_listing_and_folders(api: Api) -> None:
    root = api.get("/files").json()
    assert [f["Name"] for f in root["Result"]] == ["readme.txt"]
    assert [f["Name"] for f in api.get("/files/folders").json()["Result"]] == ["Archive", "Files"]
    sub = api.get("/files/folders", externalKey=folder_key(api, "Files")).json()["Result"]
    assert [f["Name"] for f in sub] == ["Invoices", "products"]


def test_files_paging_and_sorting(api: Api) -> None:
    key = folder_key(api, "Files")
    page = api.get(
        "/files", externalKey=key, pageSize=5, pageNumber=1, sortField="Size", sortDescending="true"
    ).json()
    assert page["Pagination"] == {"TotalCount": 3, "PageNumber": 1, "PageSize": 5}
    sizes = [f["Size"] for f in page["Result"]]
    assert sizes == sorted(sizes, reverse=True)
    assert api.get("/files", pageSize=4).status_code == 400
    assert api.get("/files", externalKey="00000000-0000-0000-0000-000000000000").status_code == 404


def test_download_by_key_and_path(api: Api) -> None:
    key = folder_key(api, "Files")
    logo = next(
        f for f in api.get("/files", externalKey=key).json()["Result"] if f["Name"] == "logo.png"
    )
    r = api.get(f"/files/{logo['ExternalKey']}")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    assert r.headers["Content-Type"] == "image/png" and len(r.content) == logo["Size"]
    assert "logo.png" in r.headers["Content-Disposition"]
    assert api.get("/files/path", filePath="/Files/logo.png").content == r.content
    info = api.get("/files/path/fileInfo", filePath="/files/LOGO.png").json()["Result"]
    assert info["ExternalKey"] == logo["ExternalKey"]
    assert api.get("/files/path", filePath="/Files/nope.png").status_code == 404


def test_attachments(api: Api) -> None:
    info = api.get("/tables/Orders/attachments/Invoice/fileInfo").json()["Result"]
    assert [i["PK_ID"] for i in info] == [200, 400, 600, 800, 1000, 1200, 1400]
    r = api.get("/tables/Orders/attachments/Invoice/200")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["Content-Type"] == "application/pdf"
    assert api.get("/tables/Orders/attachments/Invoice/1").status_code == 404
    assert api.get("/tables/Orders/attachments/Nope/1").status_code == 404
    rec = api.get("/tables/Orders/records", **{"q.where": "PK_ID = 200"}).json()["Result"][0]
    assert rec["Invoice"] == "invoice-SO-000200.pdf"
    sub = api.get(
        "/tables/Orders/attachments/Invoice/fileInfo", **{"q.where": "PK_ID <= 400"}
    ).json()
    assert [i["PK_ID"] for i in sub["Result"]] == [200, 400]


def test_metadata_lists(api: Api) -> None:
    apps = api.get("/bridgeApplications").json()["Result"]
    assert apps[0]["AppName"] == "Sales Portal" and apps[0]["DataPagesCount"] == 2
    pages = api.get(f"/bridgeApplications/{apps[0]['ExternalKey']}/datapages").json()["Result"]
    assert len(pages) == 2
    dirs = api.get("/directories").json()["Result"]
    assert dirs[0]["NumberOfUsers"] == 6
    users = api.get(
        f"/directories/{dirs[0]['Id']}/users",
        **{"q.where": "_status = 'Active'", "q.pageSize": 5, "q.getPaginationInfo": "true"},
    ).json()
    assert users["Pagination"]["TotalCount"] == 3 and "PK_ID" not in users["Result"][0]
    assert api.get("/dataImportExportTasks").json()["Result"][0]["ExternalKey"] == "T0000001"
    hooks = api.get("/outgoingWebhooks").json()
    assert isinstance(hooks, list) and hooks[0]["Id"] == "wh-0001"
    assert api.get("/outgoingWebhooks/nope").status_code == 404
