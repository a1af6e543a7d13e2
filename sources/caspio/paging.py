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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import pyarrow as pa

from .client import CaspioClient, CaspioResponse
from .errors import CaspioConfigError
from .filters import and_, int_literal, string_literal
from .schema import TABLES
from .settings import MAX_PAGE_SIZE, MIN_PAGE_SIZE, PK_FIELD

Rows = list[dict[str, Any]]

PageDecode = Callable[[bytes], pa.Table | None]
"""Turns a records body into a table in the fetching thread, or declines with ``None``."""


class RecordPage:
    """One records answer: raw row dicts, or a table a ``PageDecode`` already built.

    The page that asks for ``q.getPaginationInfo`` always comes as dicts: its first row is
    what tells the resource that the object's fields changed since the last run."""

    __slots__ = ("rows", "table")

    def __init__(self, rows: Rows | None = None, table: pa.Table | None = None) -> None:
        self.rows = rows
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows or ())

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
        decode: PageDecode | None = None,
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
        self.decode = decode
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
        return self.client.get_records(
            self.kind, self.name, self._params(lo, hi, count), None if count else self.decode
        )

    def _page(self, resp: CaspioResponse) -> RecordPage:
        if isinstance(resp.data, pa.Table):
            return RecordPage(table=resp.data)
        data = resp.data if isinstance(resp.data, Mapping) else {}
        return RecordPage(rows=list(data.get("Result") or []))

    # ---- iteration -------------------------------------------------------------------------

    def pages(self) -> Iterator[RecordPage]:
        """Yields pages (out of PK order when ranges run concurrently)."""
        lo = self.start_after
        while True:
            resp = self._fetch(lo, None, count=True)
            page = self._page(resp)
            pagination = resp.data.get("Pagination") if isinstance(resp.data, Mapping) else None
            total = pagination.get("TotalCount") if isinstance(pagination, Mapping) else None
            if self.first_response is None:
                self.first_response = resp
                self.total_count = total if isinstance(total, int) else None
            yield page
            if len(page) < self.page_size:
                return
            last = page.pk_at(-1)
            remaining = (total - len(page)) if isinstance(total, int) else None
            if remaining is not None and remaining <= 0:
                return
            if self.kind != TABLES or not isinstance(last, int) or remaining is None:
                yield from self._sequential(last)
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

    def _sequential(self, last: Any) -> Iterator[RecordPage]:
        while True:
            page = self._page(self._fetch(last, None))
            yield page
            if len(page) < self.page_size:
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
        executor = self.client.executor
        inflight: dict[Future[CaspioResponse], int] = {
            executor.submit(self._fetch, lo, hi): hi for lo, hi in bounds
        }
        try:
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    hi = inflight.pop(fut)
                    page = self._page(fut.result())
                    if not self._range_done(page, hi):
                        # keep the range busy before handing this page on
                        inflight[executor.submit(self._fetch, page.pk_at(-1), hi)] = hi
                    yield page
        finally:
            for fut in inflight:
                fut.cancel()

    def _range_done(self, page: RecordPage, hi: int) -> bool:
        if len(page) < self.page_size:
            return True
        last = page.pk_at(-1)
        return not isinstance(last, int) or last >= hi
