"""Files area and attachment resources, and the opt-in content download, over real HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dlt
import pytest

from sources.caspio.files import ATTACHMENTS_RESOURCE, attachments_resource, files_resources
from tests.helpers import client_for, read_rows

FILES: list[dict[str, Any]] = [
    {"Path": "/logo.png", "Text": "root logo", "LastModified": "2024-02-01T10:00:00"},
    {"Path": "/Artwork/banner.png", "Text": "banner v1", "LastModified": "2024-02-02T10:00:00"},
    {"Path": "/Artwork/Old/icon.ico", "Text": "icon", "LastModified": "2024-02-03T10:00:00"},
    {"Path": "/Docs/manual.pdf", "Text": "manual", "LastModified": "2024-02-04T10:00:00"},
]
DATASET: dict[str, Any] = {
    "tables": {
        "Photos": {
            "fields": [
                {"Name": "Title", "Type": "STRING"},
                {"Name": "Image", "Type": "ATTACHMENT"},
                {"Name": "Thumb", "Type": "ATTACHMENT"},
            ],
            "rows": [
                {"Title": "a", "Image": {"Name": "a.png", "Text": "image a"}},
                {"Title": "b", "Image": "b.png", "Thumb": "b-small.png"},
                {"Title": "c"},
            ],
        },
        "Plain": {"fields": [{"Name": "X", "Type": "INTEGER"}], "rows": [{"X": 1}]},
    },
    "files": FILES,
    "folders": ["/Empty"],
}


def _pipeline(tmp_path: Path, name: str = "files_test") -> Any:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(credentials=str(tmp_path / "files.duckdb")),
        dataset_name="caspio",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_files_walks_folders_recursively_and_loads_metadata(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    pipeline = _pipeline(tmp_path)
    pipeline.run(files_resources(client_for(emu)))

    files = read_rows(pipeline, "caspio_files", order_by="path")
    assert [f["path"] for f in files] == sorted(f["Path"] for f in FILES)
    assert {f["path"]: f["size"] for f in files} == {
        f["Path"]: len(f["Text"].encode()) for f in FILES
    }
    assert all(f["last_modified"] is not None and f["external_key"] for f in files)
    folders = read_rows(pipeline, "caspio_folders", order_by="path")
    assert [f["path"] for f in folders] == ["/Artwork", "/Artwork/Old", "/Docs", "/Empty"]
    by_path = {f["path"]: f for f in folders}
    assert by_path["/Artwork/Old"]["parent_key"] == by_path["/Artwork"]["external_key"]
    assert by_path["/Docs"]["parent_key"] is None


def test_files_incremental_and_download_skips_unchanged(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    target = tmp_path / "content"
    pipeline = _pipeline(tmp_path)
    client = client_for(emu)
    client.get("/tables")  # token in hand: the counts below are listing + content calls only

    def content_calls() -> int:
        return sum(
            1
            for e in emu.log
            if e.path.lower().startswith("/integrations/rest/v3/files/")
            and not e.path.lower().endswith("/folders")
        )

    emu.reset_log()
    info = pipeline.run(files_resources(client, download_to=str(target)))
    assert not info.has_failed_jobs
    assert content_calls() == len(FILES)
    for spec in FILES:
        assert (target / spec["Path"].lstrip("/")).read_text() == spec["Text"]
    rows = {r["path"]: r for r in read_rows(pipeline, "caspio_files", order_by="path")}
    assert rows["/logo.png"]["content_sha256"] == hashlib.sha256(b"root logo").hexdigest()

    # second run: nothing changed -> no content call and no file row loaded again
    emu.reset_log()
    pipeline.run(files_resources(client, download_to=str(target)))
    assert content_calls() == 0
    assert pipeline.last_trace.last_normalize_info.row_counts.get("caspio_files", 0) == 0

    # one file changes in Caspio -> exactly that one is downloaded and re-loaded
    emu.app.files.add_file(
        "/Artwork/banner.png",
        b"banner v2",
        "image/png",
        "2024-02-02T10:00:00",
        "2024-03-01T10:00:00",
    )
    emu.reset_log()
    pipeline.run(files_resources(client, download_to=str(target)))
    assert content_calls() == 1
    assert (target / "Artwork" / "banner.png").read_text() == "banner v2"
    assert pipeline.last_trace.last_normalize_info.row_counts["caspio_files"] == 1

    # a deleted local copy is fetched again even though Caspio did not change
    (target / "Docs" / "manual.pdf").unlink()
    emu.reset_log()
    pipeline.run(files_resources(client, download_to=str(target)))
    assert content_calls() == 1
    assert (target / "Docs" / "manual.pdf").read_text() == "manual"


def test_download_into_a_filesystem_bucket_url(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    bucket = (tmp_path / "bucket").as_uri()  # file:// — the same code path as s3:// or gs://
    pipeline = _pipeline(tmp_path)
    pipeline.run(files_resources(client_for(emu), download_to=bucket))
    assert (tmp_path / "bucket" / "Artwork" / "Old" / "icon.ico").read_text() == "icon"


def test_attachment_metadata_and_download(caspio_emulator_factory: Any, tmp_path: Path) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    pipeline = _pipeline(tmp_path)
    target = tmp_path / "attachments"
    client = client_for(emu)
    pipeline.run(attachments_resource(client, ["Photos", "Plain"], download_to=str(target)))
    rows = read_rows(pipeline, ATTACHMENTS_RESOURCE, order_by="field_name, pk_id")
    assert [(r["table_name"], r["field_name"], r["pk_id"], r["file_name"]) for r in rows] == [
        ("Photos", "Image", 1, "a.png"),
        ("Photos", "Image", 2, "b.png"),
        ("Photos", "Thumb", 2, "b-small.png"),
    ]
    assert (target / "Photos" / "Image" / "1" / "a.png").read_text() == "image a"
    assert rows[0]["size"] == len(b"image a")

    emu.reset_log()
    pipeline.run(attachments_resource(client, ["Photos", "Plain"], download_to=str(target)))
    fetched = [
        e.path for e in emu.log if "/attachments/" in e.path and "fileinfo" not in e.path.lower()
    ]
    assert fetched == []


@pytest.mark.parametrize("page_size", [5])
def test_listing_pages_by_page_number(
    caspio_emulator_factory: Any, tmp_path: Path, page_size: int
) -> None:
    many = [{"Path": f"/Bulk/f{i:02}.txt", "Text": str(i)} for i in range(12)]
    emu = caspio_emulator_factory(dataset={"files": many})
    pipeline = _pipeline(tmp_path)
    client = client_for(emu)
    client.get("/tables")
    emu.reset_log()
    pipeline.run(files_resources(client, page_size=page_size))
    assert len(read_rows(pipeline, "caspio_files", order_by="path")) == 12
    listing = [e for e in emu.log if e.path.endswith("/files")]
    assert len(listing) == 1 + 3  # root (empty) + ceil(12 / 5) pages of /Bulk


def test_extra_resources_turn_on_only_what_is_asked(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    from sources.caspio.extras import extra_resources

    emu = caspio_emulator_factory(dataset=DATASET)
    client = client_for(emu)
    assert extra_resources(client) == []
    chosen = extra_resources(
        client, metadata=["caspio_outgoing_webhooks"], files=True, attachments=True
    )
    assert [r.name for r in chosen] == [
        "caspio_folders",
        "caspio_files",
        ATTACHMENTS_RESOURCE,
        "caspio_outgoing_webhooks",
    ]
    pipeline = _pipeline(tmp_path)
    pipeline.run(chosen)
    # attachments=True found the ATTACHMENT fields of every table by itself
    assert len(read_rows(pipeline, ATTACHMENTS_RESOURCE, order_by="pk_id")) == 3
