"""Keyset paging: every record of a table or view, 1,000 per call, in as few calls as possible.

Why keyset and not page numbers: rows inserted or deleted while a sync pages a table shift every
later page number (duplicates and skipped rows), while ``PK_ID > last ORDER BY PK_ID`` cannot
drift. Why the first call asks for ``q.getPaginationInfo``: it learns the row count for free, so
a table of up to 1,000 rows costs exactly one call, a table of exactly 1,000 too (no empty
"is there more?" call), and the rest of a big table can be split into PK ranges read
concurrently:

- first page: rows ``(lo, L]``; ``R = TotalCount - page`` rows remain;
- the first page's PK span estimates the density, so the remaining rows are expected in
  ``(L, L + E]`` (``E = R`` for a dense table); that span is cut into at most ``max_workers``
  bounded ranges whose width is a multiple of the page size;
- a bounded range is complete when a page ends exactly on its upper bound or is short, so a
  dense table costs exactly ``ceil(rows / 1000)`` calls and gaps cost at most one extra call
  per range;
- if the ranges returned fewer than ``R`` rows (gaps, or rows beyond the estimate), the loop
  starts again after ``L + E`` with a counting first page. Rows inserted during the sync get
  higher PK_IDs and never fall inside a range, so counting cannot stop early on an old row.

Views have a string ``PK_ID`` (comma-joined source keys): they are paged sequentially by string
keyset, with the value quoted.
"""

import math
import queue
import threading
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

import orjson
import pyarrow as pa

from .client import CaspioClient, CaspioResponse
from .errors import CaspioConfigError
from .filters import and_, int_literal, string_literal
from .page_decoder import CountedTable, PageDecoder, total_count
from .schema import TABLES
from .settings import MAX_PAGE_SIZE, MIN_PAGE_SIZE, PK_FIELD

Rows = list[dict[str, Any]]


class RecordPage:
    """One records answer: raw row dicts, or a table a decoder already built.

    The first page of a read also knows its first record's field names (``field_names``):
    they tell the resource that the object's fields changed since the last run, and then
    ``as_rows`` gives the page back as dicts, to be converted with the refreshed fields."""

    __slots__ = ("rows", "table", "first_keys", "body")

    def __init__(
        self,
        rows: Rows | None = None,
        table: pa.Table | None = None,
        first_keys: Collection[str] | None = None,
        body: bytes | None = None,
    ) -> None:
        self.rows = rows
        self.table = table
        self.first_keys = first_keys
        self.body = body

    def __len__(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows or ())

    def field_names(self) -> Collection[str] | None:
        """The first record's field names, when this page knows them (a first page)."""
        if self.rows:
            return self.rows[0].keys()
        return self.first_keys

    def as_rows(self) -> "RecordPage":
        """This page as row dicts: a decoded first page is re-read from its body."""
        if self.table is None or self.body is None:
            return self
        data = orjson.loads(self.body)
        return RecordPage(rows=list(data.get("Result") or []))

    def pk_at(self, index: int) -> Any:
        if self.table is not None:
            return self.table.column(PK_FIELD)[index].as_py()
        return (self.rows or [])[index].get(PK_FIELD)


class KeysetReader:
    """Reads one object's records (optionally filtered) page by page.

    Iterate ``pages()``; after the first page, ``first_response`` holds that answer (its
    ``Date`` header is the server time at sync start) and ``total_count`` the matching rows.
    """

    def __init__(
        self,
        client: CaspioClient,
        kind: str,
        name: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        where: str | None = None,
        select: str | None = None,
        start_after: int | str | None = None,
        max_workers: int | None = None,
        decoder: PageDecoder | None = None,
    ) -> None:
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
            raise CaspioConfigError(
                f"page_size must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}, got {page_size}"
            )
        self.client = client
        self.kind = kind
        self.name = name
        self.page_size = page_size
        self.where = where
        self.select = select
        self.start_after = start_after
        self.max_workers = max_workers or client.max_workers
        self.decoder = decoder
        """Decodes pages into tables in the fetching thread (declined pages come as dicts);
        ``None``: every page as dicts."""
        self.first_response: CaspioResponse | None = None
        self.total_count: int | None = None

    # ---- one call --------------------------------------------------------------------------

    def _params(self, lo: int | str | None, hi: int | None, count: bool) -> dict[str, str | int]:
        lower: str | None = None
        if lo is not None:
            lower = f"{PK_FIELD} > " + (
                int_literal(lo) if isinstance(lo, int) else string_literal(str(lo))
            )
        upper = f"{PK_FIELD} <= {int_literal(hi)}" if hi is not None else None
        params: dict[str, str | int] = {
            "q.pageSize": self.page_size,
            "q.pageNumber": 1,
            "q.orderBy": PK_FIELD,
        }
        where = and_(lower, upper, self.where)
        if where:
            params["q.where"] = where
        if self.select:
            params["q.select"] = self.select
        if count:
            params["q.getPaginationInfo"] = "true"
        return params

    def _fetch(self, lo: int | str | None, hi: int | None, count: bool = False) -> CaspioResponse:
        decode = None
        if self.decoder is not None:
            decode = self.decoder.decode_counted if count else self.decoder.decode
        return self.client.get_records(self.kind, self.name, self._params(lo, hi, count), decode)

    def _page(self, resp: CaspioResponse) -> RecordPage:
        if isinstance(resp.data, pa.Table):
            return RecordPage(table=resp.data)
        if isinstance(resp.data, CountedTable):
            return RecordPage(
                table=resp.data.table, first_keys=resp.data.first_keys, body=resp.data.body
            )
        data = resp.data if isinstance(resp.data, Mapping) else {}
        return RecordPage(rows=list(data.get("Result") or []))

    @staticmethod
    def _total_count(resp: CaspioResponse) -> int | None:
        if isinstance(resp.data, CountedTable):
            return resp.data.total_count
        return total_count(resp.data.get("Pagination") if isinstance(resp.data, Mapping) else None)

    # ---- iteration -------------------------------------------------------------------------

    def pages(self) -> Iterator[RecordPage]:
        """Yields pages (out of PK order when ranges run concurrently)."""
        lo = self.start_after
        while True:
            resp = self._fetch(lo, None, count=True)
            page = self._page(resp)
            total = self._total_count(resp)
            if self.first_response is None:
                self.first_response = resp
                self.total_count = total
            yield page
            if len(page) < self.page_size:
                return
            last = page.pk_at(-1)
            remaining = (total - len(page)) if total is not None else None
            if remaining is not None and remaining <= 0:
                return
            if self.kind != TABLES or not isinstance(last, int) or remaining is None:
                yield from self._sequential(last, remaining)
                return
            first = page.pk_at(0)
            span = max(last - (first if isinstance(first, int) else last) + 1, self.page_size)
            expected_span = math.ceil(remaining * span / self.page_size)
            got = 0
            for ranged in self._ranges(last, expected_span, remaining):
                got += len(ranged)
                yield ranged
            if got >= remaining:
                return
            lo = last + expected_span

    def _sequential(self, last: Any, remaining: int | None) -> Iterator[RecordPage]:
        """Page after page from ``last``; stops at a short page, or once the rows the first
        answer counted are read (no empty page to learn that a full one was the last)."""
        while True:
            page = self._page(self._fetch(last, None))
            yield page
            if remaining is not None:
                remaining -= len(page)
            if len(page) < self.page_size or (remaining is not None and remaining <= 0):
                return
            last = page.pk_at(-1)

    def _ranges(self, after: int, span: int, remaining: int) -> Iterator[RecordPage]:
        """Reads ``(after, after + span]`` in up to ``max_workers`` concurrent bounded ranges."""
        ps = self.page_size
        pages_needed = math.ceil(remaining / ps)
        k = max(1, min(self.max_workers, pages_needed))
        width = math.ceil(math.ceil(span / ps) / k) * ps
        end = after + span
        bounds: list[tuple[int, int]] = []
        lo = after
        while lo < end:
            hi = min(lo + width, end)
            bounds.append((lo, hi))
            lo = hi
        if len(bounds) == 1:
            # one range: no point in a thread hop
            lo, hi = bounds[0]
            while True:
                page = self._page(self._fetch(lo, hi))
                yield page
                if self._range_done(page, hi):
                    return
                lo = page.pk_at(-1)
        yield from _ConcurrentRanges(self, bounds).pages()

    def _range_done(self, page: RecordPage, hi: int) -> bool:
        if len(page) < self.page_size:
            return True
        last = page.pk_at(-1)
        return not isinstance(last, int) or last >= hi


class _ConcurrentRanges:
    """Reads bounded PK ranges side by side, each range's next call sent by the fetch thread
    that received the page before it.

    Why not from the consuming generator: under dlt's ``parallelized`` resources the generator
    only runs when dlt's main thread asks it for an item, and between two asks that thread
    writes Parquet. A follow-up sent from the generator waited for that write, so the fetch
    threads sat idle half of a sync. Pages that are received but not yet taken are capped at
    ``max_buffered``: a range whose next page would pass the cap is parked and resumed as the
    consumer catches up, so memory stays bounded when the destination is the slow side.
    """

    def __init__(self, reader: KeysetReader, bounds: list[tuple[int, int]]) -> None:
        self.reader = reader
        self.bounds = bounds
        self.max_buffered = 2 * len(bounds)
        self.received: queue.SimpleQueue[tuple[RecordPage, bool] | BaseException] = (
            queue.SimpleQueue()
        )
        self.lock = threading.Lock()
        self.buffered = 0
        self.parked: list[tuple[int, int]] = []
        self.in_flight: set[Future[CaspioResponse]] = set()
        self.closed = False

    def pages(self) -> Iterator[RecordPage]:
        open_ranges = len(self.bounds)
        for lo, hi in self.bounds:
            self._send(lo, hi)
        try:
            while open_ranges:
                item = self.received.get()
                if isinstance(item, BaseException):
                    raise item
                page, range_done = item
                with self.lock:
                    self.buffered -= 1
                    resume = self.parked.pop() if self.parked else None
                if resume is not None:
                    self._send(*resume)
                if range_done:
                    open_ranges -= 1
                yield page
        finally:
            with self.lock:
                self.closed = True
                pending = list(self.in_flight)
            for fut in pending:
                fut.cancel()

    def _send(self, lo: int, hi: int) -> None:
        fut = self.reader.client.executor.submit(self.reader._fetch, lo, hi)
        with self.lock:
            self.in_flight.add(fut)
        # runs in the fetch thread when the call ends (or here, if it already has)
        fut.add_done_callback(lambda done: self._received(done, hi))

    def _received(self, fut: Future[CaspioResponse], hi: int) -> None:
        with self.lock:
            self.in_flight.discard(fut)
            if self.closed or fut.cancelled():
                return
        try:
            page = self.reader._page(fut.result())
            range_done = self.reader._range_done(page, hi)
            follow_up = None if range_done else (page.pk_at(-1), hi)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self.received.put(exc)
            return
        with self.lock:
            self.buffered += 1
            if self.closed:  # the consumer stopped: no call it would not read
                follow_up = None
            elif follow_up is not None and self.buffered >= self.max_buffered:
                self.parked.append(follow_up)
                follow_up = None
        self.received.put((page, range_done))
        if follow_up is not None:
            try:
                self._send(*follow_up)
            except BaseException as exc:  # noqa: BLE001 - e.g. the client was closed meanwhile
                self.received.put(exc)
