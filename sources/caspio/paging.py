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

A view's ``PK_ID`` is a string (comma-joined source keys): this reader pages it sequentially by
string keyset, with the value quoted. ``view_pager.py`` pages views by their integer
``_PK_ID_<Table>`` keys instead (clauses: ``view_keyset.py``), in concurrent ranges run by the
same ``ConcurrentRanges``, and falls back to this reader when a view has no such keys.
"""

import datetime as dt
import math
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import pyarrow as pa

from .client import CaspioClient
from .errors import CaspioConfigError
from .filters import and_, int_literal, string_literal
from .schema import TABLES
from .settings import MAX_PAGE_SIZE, MIN_PAGE_SIZE, PK_FIELD, ObjectKind
from .stats import CallKind

Rows = list[dict[str, Any]]


class RecordPage:
    """One records answer: row dicts (JSON) or an Arrow table (``reader.py``), with what the
    first answer of a read tells: the row count asked for and the server's clock."""

    __slots__ = ("rows", "table", "total_count", "server_time")

    def __init__(
        self,
        rows: Rows | None = None,
        table: pa.Table | None = None,
        total_count: int | None = None,
        server_time: dt.datetime | None = None,
    ) -> None:
        self.rows = rows
        self.table = table
        self.total_count = total_count
        self.server_time = server_time

    def __len__(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows or ())

    def pk_at(self, index: int) -> Any:
        if self.table is not None:
            return self.table.column(PK_FIELD)[index].as_py()
        return (self.rows or [])[index].get(PK_FIELD)


FetchPage = Callable[[dict[str, str | int]], RecordPage]
"""Sends one records call with these parameters and gives its page."""


class KeysetReader:
    """Reads one object's records (optionally filtered) page by page.

    Iterate ``pages()``; after the first page, ``first_page`` holds that answer (its
    ``server_time`` is the server's clock at sync start) and ``total_count`` the matching rows.
    ``fetch`` sends a call and builds its page (default: the JSON rows; ``reader.py`` gives
    Arrow tables); ``ranges=False`` reads one page after another, as a key scan does, where a
    gappy key space must not cost a call more than ``ceil(rows / page_size)``.
    """

    def __init__(
        self,
        client: CaspioClient,
        kind: ObjectKind,
        name: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        where: str | None = None,
        select: str | None = None,
        start_after: int | str | None = None,
        max_workers: int | None = None,
        fetch: FetchPage | None = None,
        ranges: bool = True,
        call: CallKind = "records",
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
        self.fetch = fetch or self._json_page
        self.ranges = ranges
        self.call = call
        self.first_page: RecordPage | None = None
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

    def _fetch(self, lo: int | str | None, hi: int | None, count: bool = False) -> RecordPage:
        return self.fetch(self._params(lo, hi, count))

    def _json_page(self, params: dict[str, str | int]) -> RecordPage:
        resp = self.client.get_records(self.kind, self.name, params, self.call)
        data = resp.data if isinstance(resp.data, Mapping) else {}
        return RecordPage(
            rows=list(data.get("Result") or []),
            total_count=total_count(data.get("Pagination")),
            server_time=resp.server_time,
        )

    # ---- iteration -------------------------------------------------------------------------

    def pages(self) -> Iterator[RecordPage]:
        """Yields pages (out of PK order when ranges run concurrently)."""
        lo = self.start_after
        while True:
            page = self._fetch(lo, None, count=True)
            total = page.total_count
            if self.first_page is None:
                self.first_page = page
                self.total_count = total
            yield page
            if len(page) < self.page_size:
                return
            last = page.pk_at(-1)
            remaining = (total - len(page)) if total is not None else None
            if remaining is not None and remaining <= 0:
                return
            if (
                not self.ranges
                or self.kind != TABLES
                or not isinstance(last, int)
                or remaining is None
            ):
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
            page = self._fetch(last, None)
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
                page = self._fetch(lo, hi)
                yield page
                if self._range_done(page, hi):
                    return
                lo = page.pk_at(-1)
        yield from ConcurrentRanges(self.client, self._fetch_range, self._follow, bounds).pages()

    def _fetch_range(self, bounds: tuple[int, int]) -> RecordPage:
        return self._fetch(*bounds)

    def _follow(self, page: RecordPage, bounds: tuple[int, int]) -> tuple[int, int] | None:
        """The range's next call after ``page``, ``None`` when the range is complete."""
        hi = bounds[1]
        return None if self._range_done(page, hi) else (page.pk_at(-1), hi)

    def _range_done(self, page: RecordPage, hi: int) -> bool:
        if len(page) < self.page_size:
            return True
        last = page.pk_at(-1)
        return not isinstance(last, int) or last >= hi


Cursor = TypeVar("Cursor")
"""Where a range's next call starts (and ends): ``(lo, hi)`` for tables, a key position for
views."""


class ConcurrentRanges(Generic[Cursor]):
    """Reads ranges side by side, each range's next call sent by the fetch thread that received
    the page before it; ``fetch(cursor)`` sends one call, ``follow(page, cursor)`` gives the
    range's next cursor or ``None`` once the range is complete.

    Why not from the consuming generator: under dlt's ``parallelized`` resources the generator
    only runs when dlt's main thread asks it for an item, and between two asks that thread
    writes Parquet. A follow-up sent from the generator waited for that write, so the fetch
    threads sat idle half of a sync. Pages that are received but not yet taken are capped at
    ``max_buffered``: a range whose next page would pass the cap is parked and resumed as the
    consumer catches up, so memory stays bounded when the destination is the slow side.
    """

    def __init__(
        self,
        client: CaspioClient,
        fetch: Callable[[Cursor], RecordPage],
        follow: Callable[[RecordPage, Cursor], Cursor | None],
        cursors: list[Cursor],
    ) -> None:
        self.client = client
        self.fetch = fetch
        self.follow = follow
        self.cursors = cursors
        self.max_buffered = 2 * len(cursors)
        self.received: queue.SimpleQueue[tuple[RecordPage, bool] | BaseException] = (
            queue.SimpleQueue()
        )
        self.lock = threading.Lock()
        self.buffered = 0
        self.parked: list[Cursor] = []
        self.in_flight: set[Future[RecordPage]] = set()
        self.closed = False

    def pages(self) -> Iterator[RecordPage]:
        open_ranges = len(self.cursors)
        for cursor in self.cursors:
            self._send(cursor)
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
                    self._send(resume)
                if range_done:
                    open_ranges -= 1
                yield page
        finally:
            with self.lock:
                self.closed = True
                pending = list(self.in_flight)
            for fut in pending:
                fut.cancel()

    def _send(self, cursor: Cursor) -> None:
        fut = self.client.executor.submit(self.fetch, cursor)
        with self.lock:
            self.in_flight.add(fut)
        # runs in the fetch thread when the call ends (or here, if it already has)
        fut.add_done_callback(lambda done: self._received(done, cursor))

    def _received(self, fut: Future[RecordPage], cursor: Cursor) -> None:
        with self.lock:
            self.in_flight.discard(fut)
            if self.closed or fut.cancelled():
                return
        try:
            page = fut.result()
            follow_up = self.follow(page, cursor)
            range_done = follow_up is None
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
                self._send(follow_up)
            except BaseException as exc:  # noqa: BLE001 - e.g. the client was closed meanwhile
                self.received.put(exc)


def total_count(pagination: Any) -> int | None:
    """``Pagination.TotalCount`` of a first page, ``None`` when absent or not a count."""
    total = pagination.get("TotalCount") if isinstance(pagination, Mapping) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def numbered_pages(
    get: Callable[[dict[str, Any]], Any],
    page_size: int,
    prefix: str = "",
    count_first: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """The item lists of an endpoint paged by page number (the Files area: ``pageNumber``;
    directory users: ``q.pageNumber``). Stops on a short page, or once the ``TotalCount`` an
    answer reports is reached, so a listing of 7 items is one call."""
    number, seen = 1, 0
    while True:
        params: dict[str, Any] = {f"{prefix}pageNumber": number, f"{prefix}pageSize": page_size}
        if count_first and number == 1:
            params[f"{prefix}getPaginationInfo"] = "true"
        body = get(params)
        items = list((body.get("Result") if isinstance(body, Mapping) else body) or [])
        yield items
        seen += len(items)
        total = total_count(body.get("Pagination")) if isinstance(body, Mapping) else None
        if len(items) < page_size or (total is not None and seen >= total):
            return
        number += 1


def keyset_items(
    get: Callable[[int | None], Any], page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """The item lists of an endpoint that takes only ``q.where`` (attachment ``fileInfo``):
    ``get(last)`` asks for the items after PK_ID ``last``; a full answer is followed."""
    last: int | None = None
    while True:
        body = get(last)
        items = sorted(
            (body.get("Result") if isinstance(body, Mapping) else None) or [],
            key=lambda item: int(item.get(PK_FIELD) or 0),
        )
        yield items
        if len(items) < page_size or not items:
            return
        last = int(items[-1][PK_FIELD])
