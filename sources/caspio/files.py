"""The Files area and attachment fields: metadata resources and an opt-in content download.

Caspio's Files area is a folder tree (``/files/folders?externalKey=<parent>``) holding files
(``/files?externalKey=<folder>``); both listings page with ``pageNumber``/``pageSize`` (no ``q.``
prefix, 5..1000). Neither listing can filter by date, so every run walks the whole tree (one call
per 1,000 folders or files of a folder) and the ``LastModified`` cursor only decides which rows
are loaded and which contents are downloaded: a file's content costs one call, so a file whose
``LastModified`` and ``Size`` match what this pipeline already stored is never fetched twice.

Resource names carry a ``caspio_`` prefix because an account commonly has a table called
``Files`` or ``Attachments`` of its own; the two must not land in one destination table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.extract.resource import DltResource

from .client import CaspioClient
from .errors import CaspioConfigError
from .paging import keyset_items, numbered_pages
from .settings import MAX_PAGE_SIZE, PK_FIELD
from .transport import api_path

FILES_RESOURCE = "caspio_files"
FOLDERS_RESOURCE = "caspio_folders"
ATTACHMENTS_RESOURCE = "caspio_attachments"
ATTACHMENT_TYPE = "ATTACHMENT"


def parse_caspio_time(value: Any) -> dt.datetime | None:
    """Caspio's file dates (``2024-05-15T13:45:00``, sometimes with ``Z`` or an offset) as UTC.

    The Files area stamps in UTC; a naive value is taken as UTC so that the cursor compares
    consistently from run to run. Unparsable values become ``None`` (the row still loads).
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def iter_listing(
    client: CaspioClient, path: str, parent_key: str | None, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every item of a Files-area listing (``/files`` or ``/files/folders``) under one parent.

    Pages by ``pageNumber`` (the only paging these endpoints have) and stops on a short page, or
    when the ``Pagination.TotalCount`` of the answer is reached, so a folder of 7 files is 1 call.
    """

    def get(params: dict[str, Any]) -> Any:
        if parent_key:
            params["externalKey"] = parent_key
        return client.get(path, params, call="files")

    for items in numbered_pages(get, page_size):
        yield from items


def walk_folders(
    client: CaspioClient, page_size: int = MAX_PAGE_SIZE
) -> Iterator[tuple[str | None, str, dict[str, Any] | None]]:
    """``(folder_key, folder_path, folder_item)`` for the root (key None, path "/") and every
    folder below it, depth first. Each folder is listed once: a cycle cannot loop."""
    stack: list[tuple[str | None, str, dict[str, Any] | None]] = [(None, "/", None)]
    visited: set[str | None] = set()
    while stack:
        key, path, item = stack.pop()
        if key in visited:
            continue
        visited.add(key)
        yield key, path, item
        children = list(iter_listing(client, "/files/folders", key, page_size))
        for child in reversed(children):
            child_key = child.get("ExternalKey")
            name = str(child.get("Name") or child_key)
            stack.append((child_key, posixpath.join(path, name), child))


def folder_row(key: str, path: str, item: dict[str, Any], parent_key: str | None) -> dict:
    return {
        "external_key": key,
        "name": item.get("Name"),
        "path": path,
        "parent_key": parent_key,
        "date_created": parse_caspio_time(item.get("DateCreated")),
    }


def file_row(item: dict[str, Any], folder_key: str | None, folder_path: str) -> dict[str, Any]:
    name = str(item.get("Name") or "")
    return {
        "external_key": item.get("ExternalKey"),
        "name": name,
        "path": posixpath.join(folder_path, name),
        "folder_key": folder_key,
        "folder_path": folder_path,
        "size": item.get("Size"),
        "content_type": item.get("ContentType"),
        "date_created": parse_caspio_time(item.get("DateCreated")),
        "last_modified": parse_caspio_time(item.get("LastModified")),
    }


class ContentStore:
    """Where downloaded content goes: a local folder or any dlt filesystem bucket URL.

    A bucket URL (``s3://``, ``gs://``, ``az://``, ``file://``, ``memory://``...) is opened with
    dlt's own fsspec helper, so its credentials come from the same place as the filesystem
    destination's (``[destination.filesystem.credentials]`` or the environment).
    """

    def __init__(self, target: str, credentials: Any = None) -> None:
        from dlt.common.storages.configuration import FilesystemConfiguration
        from dlt.common.storages.fsspec_filesystem import fsspec_from_config

        if "://" not in target:
            import pathlib

            pathlib.Path(target).mkdir(parents=True, exist_ok=True)
            target = pathlib.Path(target).resolve().as_uri()
        config = FilesystemConfiguration(bucket_url=target, credentials=credentials)
        self.fs, self.root = fsspec_from_config(config)
        self.target = target

    def full_path(self, relative: str) -> str:
        return posixpath.join(self.root.rstrip("/"), relative.lstrip("/"))

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.full_path(relative)))

    def write(self, relative: str, content: bytes) -> str:
        path = self.full_path(relative)
        parent = posixpath.dirname(path)
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(path, "wb") as f:
            f.write(content)
        return path


def _download(
    client: CaspioClient,
    store: ContentStore,
    state: dict[str, Any],
    state_key: str,
    relative: str,
    content_url_path: str,
    version: dict[str, Any],
) -> dict[str, Any]:
    """Fetch content unless state says this exact version is already in ``store``.

    ``version`` (modification time and size) is what decides; the SHA-256 kept in state lets
    a reader verify a stored copy and tells whether a re-sent file really changed.
    """
    known = state.get(state_key)
    if known and known.get("version") == version and store.exists(relative):
        return {"content_path": known["path"], "content_sha256": known["sha256"], "fetched": False}
    content = client.get_bytes(content_url_path, call="content")
    digest = hashlib.sha256(content).hexdigest()
    path = store.write(relative, content)
    state[state_key] = {"version": version, "sha256": digest, "path": path}
    return {"content_path": path, "content_sha256": digest, "fetched": True}


def _as_version(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def files_resources(
    client: CaspioClient,
    download_to: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
    initial_modified: dt.datetime | None = None,
) -> list[DltResource]:
    """The ``caspio_folders`` and ``caspio_files`` resources (merge on ``external_key``).

    ``caspio_files`` is incremental on ``last_modified``: unchanged files are listed but not
    loaded again. With ``download_to`` (a folder or bucket URL) each new or changed file's
    content is stored at its Caspio path below it.
    """
    store = ContentStore(download_to) if download_to else None
    cursor = dlt.sources.incremental[dt.datetime](
        "last_modified",
        initial_value=initial_modified,
        on_cursor_value_missing="include",
        range_start="open",
    )
    tree: list[tuple[str | None, str, dict[str, Any] | None]] = []

    def folders_once() -> list[tuple[str | None, str, dict[str, Any] | None]]:
        if not tree:
            tree.extend(walk_folders(client, page_size))
        return tree

    @dlt.resource(name=FOLDERS_RESOURCE, primary_key="external_key", write_disposition="merge")
    def caspio_folders() -> Iterator[dict[str, Any]]:
        key_by_path = {path: key for key, path, _ in folders_once()}
        for key, path, item in folders_once():
            if item is None or key is None:
                continue
            parent_path = posixpath.dirname(path.rstrip("/")) or "/"
            yield folder_row(key, path, item, key_by_path.get(parent_path))

    @dlt.resource(
        name=FILES_RESOURCE,
        primary_key="external_key",
        write_disposition="merge",
        columns={
            "last_modified": {"data_type": "timestamp", "nullable": True},
            "date_created": {"data_type": "timestamp", "nullable": True},
            "size": {"data_type": "bigint", "nullable": True},
        },
    )
    def caspio_files(
        last_modified: dlt.sources.incremental[dt.datetime] = cursor,
    ) -> Iterator[dict[str, Any]]:
        state = dlt.current.resource_state().setdefault("downloads", {}) if store else {}
        for key, path, _ in folders_once():
            for item in iter_listing(client, "/files", key, page_size):
                row = file_row(item, key, path)
                if store is not None:  # state, not the cursor, decides: see _download
                    version = {"modified": _as_version(row["last_modified"]), "size": row["size"]}
                    row.update(
                        _download(
                            client,
                            store,
                            state,
                            str(row["external_key"]),
                            row["path"],
                            api_path("files", row["external_key"]),
                            version,
                        )
                    )
                yield row

    return [caspio_folders, caspio_files]


def attachment_fields(client: CaspioClient, tables: Sequence[str]) -> dict[str, list[str]]:
    """Per table, its ATTACHMENT fields (one ``/fields`` call per table)."""
    found: dict[str, list[str]] = {}
    for table in tables:
        fields = client.get_fields("tables", table)
        names = [f["Name"] for f in fields if str(f.get("Type", "")).upper() == ATTACHMENT_TYPE]
        if names:
            found[table] = names
    return found


def iter_attachment_info(
    client: CaspioClient, table: str, field: str, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every attachment's metadata of one field, keyset paged by ``PK_ID``.

    ``/tables/{t}/attachments/{field}/fileInfo`` takes only ``q.where``; no answer holds more
    than 1,000 items, so a full answer is followed by ``q.where=PK_ID > <last>``.
    """
    path = api_path("tables", table, "attachments", field, "fileInfo")

    def get(last: int | None) -> Any:
        params = {"q.where": f"{PK_FIELD} > {int(last)}"} if last is not None else None
        return client.get(path, params, call="files")

    for items in keyset_items(get, page_size):
        yield from items


def attachments_resource(
    client: CaspioClient,
    tables: Sequence[str] | None,
    download_to: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> DltResource:
    """``caspio_attachments``: one row per (table, field, PK_ID) holding a file.

    ``tables`` are the Caspio tables to look in (``None``: every table, from one ``/tables``
    listing at extract time); attachment fields are found from each table's ``/fields``.
    Merged on the triple; with ``download_to``, content goes to ``<table>/<field>/<PK_ID>/<name>``
    and is fetched again only when the attachment's ``DateUpdated`` or size changed.
    """
    if download_to is not None and not isinstance(download_to, str):
        raise CaspioConfigError("download_to must be a folder path or a bucket URL")
    store = ContentStore(download_to) if download_to else None

    @dlt.resource(
        name=ATTACHMENTS_RESOURCE,
        primary_key=("table_name", "field_name", "pk_id"),
        write_disposition="merge",
        columns={
            "date_created": {"data_type": "timestamp", "nullable": True},
            "date_updated": {"data_type": "timestamp", "nullable": True},
            "size": {"data_type": "bigint", "nullable": True},
        },
    )
    def caspio_attachments() -> Iterator[dict[str, Any]]:
        state = dlt.current.resource_state().setdefault("downloads", {}) if store else {}
        names = list(tables) if tables is not None else client.list_tables()
        for table, fields in attachment_fields(client, names).items():
            for field in fields:
                for item in iter_attachment_info(client, table, field, page_size):
                    pk = int(item[PK_FIELD])
                    row: dict[str, Any] = {
                        "table_name": table,
                        "field_name": field,
                        "pk_id": pk,
                        "file_name": item.get("FileName"),
                        "file_type": item.get("FileType"),
                        "size": item.get("Size"),
                        "date_created": parse_caspio_time(item.get("DateCreated")),
                        "date_updated": parse_caspio_time(item.get("DateUpdated")),
                    }
                    if store is not None:
                        version = {
                            "modified": _as_version(row["date_updated"]),
                            "size": row["size"],
                        }
                        name = str(row["file_name"] or pk)
                        row.update(
                            _download(
                                client,
                                store,
                                state,
                                f"{table}/{field}/{pk}",
                                f"{table}/{field}/{pk}/{name}",
                                api_path("tables", table, "attachments", field, pk),
                                version,
                            )
                        )
                    yield row

    return caspio_attachments
