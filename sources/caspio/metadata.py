"""Account metadata for lineage and audits: apps, DataPages, directories, users, tasks, webhooks.

Each is its own resource, off by default (``caspio(metadata=True)`` or a list of the names
below turns them on). All are small, so each is replaced in full on every run: a deleted app or
user disappears from the warehouse too. Cost per run: 1 call per listing, plus 1 per application
(its DataPages) and 1 per 1,000 users of each directory.

Nothing secret leaves Caspio through here: any field whose name looks like a password, hash,
token or secret is dropped before dlt sees it, and webhook URLs lose their query strings and
user info (where shared secrets of receiving services usually travel).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dlt
from dlt.extract.resource import DltResource

from .client import CaspioClient
from .errors import CaspioConfigError
from .paging import numbered_pages
from .settings import MAX_PAGE_SIZE
from .transport import api_path

APPLICATIONS = "caspio_applications"
DATAPAGES = "caspio_datapages"
DIRECTORIES = "caspio_directories"
DIRECTORY_USERS = "caspio_directory_users"
TASKS = "caspio_import_export_tasks"
WEBHOOKS = "caspio_outgoing_webhooks"
METADATA_RESOURCES: tuple[str, ...] = (
    APPLICATIONS,
    DATAPAGES,
    DIRECTORIES,
    DIRECTORY_USERS,
    TASKS,
    WEBHOOKS,
)

_SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|hash|salt|security_?answer|otp|mfa|api_?key|private", re.IGNORECASE
)
_USER_KEYS = ("PK_ID", "UserGUID", "UserId", "Id", "Email", "UserName", "Username")


def drop_secrets(item: dict[str, Any]) -> dict[str, Any]:
    """The item without fields whose names look secret (case-insensitive, anywhere in the name)."""
    return {k: v for k, v in item.items() if not _SECRET_NAME.search(str(k))}


def redact_url(url: Any) -> Any:
    """``https://user:pw@host/path?token=x`` -> ``https://host/path``; non-strings unchanged."""
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _result_list(body: Any) -> list[dict[str, Any]]:
    """``{"Result": [...]}`` or a bare JSON array (``/outgoingWebhooks`` answers that way)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return list(body.get("Result") or [])
    return []


def iter_users(
    client: CaspioClient, directory_id: str, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Users of one directory, ``q.pageNumber``/``q.pageSize`` paged, secrets dropped."""
    path = api_path("directories", directory_id, "users")

    def get(params: dict[str, Any]) -> Any:
        return client.get(path, params, call="metadata")

    for users in numbered_pages(get, page_size, prefix="q.", count_first=True):
        for user in users:
            clean = drop_secrets(user)
            key = next((clean[k] for k in _USER_KEYS if clean.get(k) is not None), None)
            yield {"directory_id": directory_id, "user_key": str(key), **clean}


def metadata_resources(
    client: CaspioClient, which: bool | Sequence[str] = True, page_size: int = MAX_PAGE_SIZE
) -> list[DltResource]:
    """The chosen metadata resources (``True``: all of :data:`METADATA_RESOURCES`)."""
    names = list(METADATA_RESOURCES) if which is True else list(which or [])
    unknown = [n for n in names if n not in METADATA_RESOURCES]
    if unknown:
        raise CaspioConfigError(
            f"Unknown metadata resource(s) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(METADATA_RESOURCES)}, or metadata=True for all"
        )

    def listing(path: str) -> Callable[[], Iterator[dict[str, Any]]]:
        def items() -> Iterator[dict[str, Any]]:
            for item in _result_list(client.get(path, call="metadata")):
                yield drop_secrets(item)

        return items

    apps = dlt.resource(
        listing("/bridgeApplications"),
        name=APPLICATIONS,
        primary_key="ExternalKey",
        write_disposition="replace",
    )

    @dlt.transformer(
        data_from=apps, name=DATAPAGES, primary_key="AppKey", write_disposition="replace"
    )
    def datapages(app: dict[str, Any]) -> Iterator[dict[str, Any]]:
        key = app.get("ExternalKey")
        body = client.get(api_path("bridgeApplications", key, "datapages"), call="metadata")
        for page in _result_list(body):
            yield {"ApplicationKey": key, **drop_secrets(page)}

    directories = dlt.resource(
        listing("/directories"), name=DIRECTORIES, primary_key="Id", write_disposition="replace"
    )

    @dlt.transformer(
        data_from=directories,
        name=DIRECTORY_USERS,
        primary_key=("directory_id", "user_key"),
        write_disposition="replace",
    )
    def directory_users(directory: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from iter_users(client, str(directory.get("Id")), page_size)

    tasks = dlt.resource(
        listing("/dataImportExportTasks"),
        name=TASKS,
        primary_key="ExternalKey",
        write_disposition="replace",
    )

    def webhook_items() -> Iterator[dict[str, Any]]:
        for hook in _result_list(client.get("/outgoingWebhooks", call="metadata")):
            clean = drop_secrets(hook)
            if isinstance(clean.get("OutgoingUrls"), list):
                clean["OutgoingUrls"] = [redact_url(u) for u in clean["OutgoingUrls"]]
            yield clean

    webhooks = dlt.resource(
        webhook_items, name=WEBHOOKS, primary_key="Id", write_disposition="replace"
    )

    by_name: dict[str, DltResource] = {
        APPLICATIONS: apps,
        DATAPAGES: datapages,
        DIRECTORIES: directories,
        DIRECTORY_USERS: directory_users,
        TASKS: tasks,
        WEBHOOKS: webhooks,
    }
    return [by_name[n] for n in METADATA_RESOURCES if n in names]
