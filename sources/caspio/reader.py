"""An object's record pages as Arrow tables of its schema: the one place a page is decoded.

Each page body is decoded in the thread that fetched it: Arrow's JSON reader first
(``page_decoder.py``, outside the GIL); a page it declines (odd values) goes the general way,
``orjson`` and ``arrow.page_to_arrow``. A 2xx body that is not valid JSON was cut in transit:
it is asked for again, with the client's own backoff and give-up time. Values that fit
neither way (a field retyped during the sync) stop the read with the object named.

A view is paged by its integer ``_PK_ID_<Table>`` keys when it has them (``view_pager.py``):
its pages are decoded with the keys as extra columns, which paging needs and which are dropped
before a table leaves this reader, so the loaded table is the one a plain view read gives.
"""

import datetime as dt
import time
from collections.abc import Iterator, Mapping

import orjson
import pyarrow as pa

from .arrow import page_to_arrow
from .client import CaspioClient
from .errors import CaspioError
from .page_decoder import CountedTable, PageDecoder
from .paging import KeysetReader, RecordPage, total_count
from .schema import ObjectSchema
from .settings import MAX_PAGE_SIZE
from .view_pager import ViewKeysetReader, view_keys


class RecordReader:
    """Reads one object's records (optionally filtered) as Arrow tables of ``schema``.

    After the first page, ``server_time`` is the server's clock when the read started."""

    def __init__(
        self,
        client: CaspioClient,
        schema: ObjectSchema,
        *,
        page_size: int = MAX_PAGE_SIZE,
        where: str | None = None,
        select: str | None = None,
        start_after: int | str | None = None,
        max_workers: int | None = None,
        keys_refused: bool = False,
    ) -> None:
        self.client = client
        self.schema = schema
        self.width = len(schema.fields)
        """Columns a loaded table has: the key columns a view is paged by come after them."""
        keyed = start_after is None and not keys_refused  # refused: known from an earlier run
        keys = view_keys(schema, select, where, page_size) if keyed else None
        self.decoder = PageDecoder(keys.decode_schema(schema) if keys else schema)
        # (duplicates pairs this keyword list with client.py's exchange call: shape only)
        by_pk = KeysetReader(
            client,
            schema.kind,
            schema.name,
            page_size=page_size,
            where=where,
            select=select,
            start_after=start_after,
            max_workers=max_workers,
            fetch=self._fetch,
        )
        self.pager: KeysetReader | ViewKeysetReader = by_pk
        if keys is not None:
            self.pager = ViewKeysetReader(
                client,
                schema,
                keys,
                by_pk,
                self._fetch,
                page_size=page_size,
                where=where,
                select=select,
                max_workers=max_workers,
            )

    @property
    def keyed(self) -> bool | None:
        """Whether Caspio took the view's keys (``False``: refused); ``None``: not tried."""
        return self.pager.keyed if isinstance(self.pager, ViewKeysetReader) else None

    @property
    def server_time(self) -> dt.datetime | None:
        first = self.pager.first_page
        return first.server_time if first is not None else None

    def tables(self) -> Iterator[pa.Table]:
        """The non-empty pages, as tables (out of PK order when ranges run concurrently)."""
        for page in self.pager.pages():
            if len(page) and page.table is not None:
                table = page.table
                yield table if table.num_columns == self.width else table.select(range(self.width))

    def _fetch(self, params: dict[str, str | int]) -> RecordPage:
        """One call, decoded; a truncated body is asked for again (runs in a fetch thread)."""
        counted = "q.getPaginationInfo" in params
        started = time.monotonic()
        attempt = 0
        while True:
            resp = self.client.get_records_body(self.schema.kind, self.schema.name, params)
            body = bytes(resp.data)
            decoded = self._fast(body, counted)
            if decoded is not None:
                table, total = decoded
                return RecordPage(table=table, total_count=total, server_time=resp.server_time)
            try:
                data = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                attempt += 1
                self.client.pause_before_retry(
                    "invalid_json", attempt, started, f"GET {self.schema.name} records"
                )
                continue
            data = data if isinstance(data, Mapping) else {}
            return RecordPage(
                table=self._convert(list(data.get("Result") or [])),
                total_count=total_count(data.get("Pagination")),
                server_time=resp.server_time,
            )

    def _fast(self, body: bytes, counted: bool) -> tuple[pa.Table, int | None] | None:
        if counted:
            result: CountedTable | None = self.decoder.decode_counted(body)
            return (result.table, result.total_count) if result is not None else None
        table = self.decoder.decode(body)
        return (table, None) if table is not None else None

    def _convert(self, rows: list[dict[str, object]]) -> pa.Table:
        try:
            return page_to_arrow(rows, self.schema)
        except (ValueError, TypeError, ArithmeticError, pa.ArrowException) as error:
            raise CaspioError(
                f"{self.schema.name}: a page holds values that do not fit the field types "
                f"({error}). A field's type was probably changed in Caspio during this sync. "
                "Nothing of this table was loaded; run again (the next run sees the new type "
                "and says what to do)"
            ) from error
