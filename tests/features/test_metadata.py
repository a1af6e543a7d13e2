"""Account metadata resources over real HTTP: apps, DataPages, directories, users, tasks, hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from sources.caspio.errors import CaspioConfigError
from sources.caspio.metadata import (
    METADATA_RESOURCES,
    drop_secrets,
    metadata_resources,
    redact_url,
)
from tests.helpers import client_for, read_rows

DATASET: dict[str, Any] = {
    "tables": {"T": {"fields": [{"Name": "X", "Type": "INTEGER"}], "rows": [{"X": 1}]}},
    "bridgeApplications": [
        {
            "AppName": "Sales",
            "ExternalKey": "app-1",
            "DateCreated": "2024-01-01T00:00:00",
            "datapages": [
                {"Name": "Orders form", "AppKey": "dp-1", "AppName": "Sales", "Type": "Submission"},
                {"Name": "Orders report", "AppKey": "dp-2", "AppName": "Sales", "Type": "Report"},
            ],
        },
        {"AppName": "Empty", "ExternalKey": "app-2", "datapages": []},
    ],
    "directories": [
        {
            "Id": "Staff",
            "Name": "Staff",
            "users": [
                {
                    "Email": f"user{i}@example.com",
                    "Name": f"User {i}",
                    "Password": "hunter2",
                    "PasswordHash": "abc",
                    "Security_Answer": "dog",
                }
                for i in range(1, 8)
            ],
        }
    ],
    "dataImportExportTasks": [
        {
            "Name": "Nightly export",
            "ExternalKey": "task-1",
            "Status": "Ready",
            "Frequency": "Every day",
        }
    ],
    "outgoingWebhooks": [
        {
            "Id": "hook-1",
            "Name": "Slack",
            "Status": "Enabled",
            "Secret": "s3cr3t",
            "OutgoingUrls": ["https://user:pw@hooks.example.com/in/abc?token=xyz"],
            "DateCreated": "2024-01-01T00:00:00",
        }
    ],
}


def test_all_metadata_resources_load_without_secrets(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    pipeline = dlt.pipeline(
        pipeline_name="meta_test",
        destination=dlt.destinations.duckdb(credentials=str(tmp_path / "meta.duckdb")),
        dataset_name="caspio",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    client = client_for(emu)
    client.get("/tables")
    emu.reset_log()
    pipeline.run(metadata_resources(client, True, page_size=5))

    apps = read_rows(pipeline, "caspio_applications", order_by="external_key")
    assert [a["app_name"] for a in apps] == ["Sales", "Empty"]
    pages = read_rows(pipeline, "caspio_datapages", order_by="app_key")
    assert [(p["application_key"], p["name"]) for p in pages] == [
        ("app-1", "Orders form"),
        ("app-1", "Orders report"),
    ]
    users = read_rows(pipeline, "caspio_directory_users", order_by="user_key")
    assert len(users) == 7 and {u["directory_id"] for u in users} == {"Staff"}
    for user in users:
        assert not any("password" in k or "security" in k for k in user), (
            f"secret column leaked: {sorted(user)}"
        )
        assert "hunter2" not in map(str, user.values())
    assert read_rows(pipeline, "caspio_directories", order_by="id")[0]["number_of_users"] == 7
    assert (
        read_rows(pipeline, "caspio_import_export_tasks", order_by="external_key")[0]["name"]
        == "Nightly export"
    )
    hooks = read_rows(pipeline, "caspio_outgoing_webhooks", order_by="id")
    assert "secret" not in hooks[0]
    with pipeline.sql_client() as sql:
        urls = sql.execute_sql("SELECT value FROM caspio.caspio_outgoing_webhooks__outgoing_urls")
    assert urls == [("https://hooks.example.com/in/abc",)]

    # cost: 4 listings + 1 per app (DataPages) + ceil(7 users / 5) pages for the one directory
    assert len(emu.log) == 4 + 2 + 2


def test_metadata_is_selectable_by_name(caspio_emulator_factory: Any) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    chosen = metadata_resources(client_for(emu), ["caspio_outgoing_webhooks"])
    assert [r.name for r in chosen] == ["caspio_outgoing_webhooks"]
    assert len(METADATA_RESOURCES) == 6
    with pytest.raises(CaspioConfigError, match="caspio_applications"):
        metadata_resources(client_for(emu), ["apps"])


def test_secret_filters() -> None:
    assert drop_secrets({"Name": "a", "user_password": "x", "APIKey": "k", "Token": "t"}) == {
        "Name": "a"
    }
    assert redact_url("https://a:b@h.example.com:8443/p?q=1#f") == "https://h.example.com:8443/p"
