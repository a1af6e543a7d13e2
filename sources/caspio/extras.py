"""The opt-in resources beyond tables and views, as the ``caspio`` source adds them.

One function, so ``__init__.py`` stays short: every extra is off unless its argument says so,
and none of them costs a call while building the source (the listings happen at extract time).
"""

from __future__ import annotations

from collections.abc import Sequence

from dlt.extract.resource import DltResource

from .client import CaspioClient
from .files import attachments_resource, files_resources
from .metadata import metadata_resources
from .settings import DEFAULT_PAGE_SIZE


def extra_resources(
    client: CaspioClient,
    metadata: bool | Sequence[str] = False,
    files: bool = False,
    attachments: bool | Sequence[str] = False,
    download_to: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> list[DltResource]:
    """Resources for the Files area, attachment metadata and account metadata, as asked.

    ``attachments``: ``True`` looks at every table's ATTACHMENT fields (one ``/tables`` listing
    and one ``/fields`` call per table at extract time), or a list of table names.
    ``download_to``: a folder or bucket URL; with it, file and attachment content is stored
    there (only new or changed content is fetched).
    """
    extras: list[DltResource] = []
    if files:
        extras += files_resources(client, download_to=download_to)
    if attachments:
        tables = None if isinstance(attachments, bool) else list(attachments)
        extras.append(attachments_resource(client, tables, download_to=download_to))
    if metadata:
        extras += metadata_resources(client, metadata, page_size=min(page_size, 1000))
    return extras
