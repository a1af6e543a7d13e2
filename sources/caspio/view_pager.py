"""Reads a view by its integer ``_PK_ID_<Table>`` keys, concurrently by range, like a table;
and prices that read for ``caspio-sync plan`` with the same decisions.

The first call (counted, as for tables) reads the first page in key order; ``split_ranges``
(``view_keyset.py``) cuts the rest into ``k1`` ranges that the client's pool reads side by side
(``paging.ConcurrentRanges``, the table ranges' own path). A view whose keys Caspio does not
know (the first call answers ``FieldNotFound``, or a query error naming a key) is read again
by its string ``PK_ID`` (``paging.KeysetReader``). Calls are billed, so the refusal is kept in
the view's resource state (``remember_keys``) and later runs (and their plans) page by
``PK_ID`` at once, until the view's ``/fields`` answer changes or ``KEYS_RETRY_AFTER`` passes
(``keys_remembered_refused``): the refused call is spent once, not on every run.
"""

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from .client import CaspioClient
from .errors import CaspioApiError, CaspioObjectNotFoundError, CaspioQueryRejectedError
from .filters import and_
from .paging import ConcurrentRanges, FetchPage, KeysetReader, RecordPage, total_count
from .schema import ObjectSchema
from .settings import MAX_PAGE_SIZE, PK_FIELD, VIEWS
from .view_keyset import (
    KEY_PREFIX,
    Position,
    ViewKeys,
    ViewRange,
    key_params,
    split_ranges,
    view_keys,
)

logger = logging.getLogger(__name__)


def keys_refused(error: CaspioApiError) -> bool:
    """Whether Caspio refused the call for naming the ``_PK_ID_`` keys (an older view)."""
    if isinstance(error, CaspioObjectNotFoundError):
        return error.code == "FieldNotFound"
    return isinstance(error, CaspioQueryRejectedError) and KEY_PREFIX.lower() in str(error).lower()


KEYS_REFUSED_STATE = "view_keys_refused"
"""Resource-state key: when (UTC ISO) Caspio last refused the view's ``_PK_ID_`` keys."""
KEYS_RETRY_AFTER = dt.timedelta(days=30)
"""How long a remembered refusal holds: Caspio may upgrade an older view without changing its
``/fields`` answer, and one refused call a month is cheap next to the slower path forever."""


def keys_remembered_refused(
    state: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], now: dt.datetime | None = None
) -> bool:
    """Whether an earlier run found this view's keys refused, under ``KEYS_RETRY_AFTER`` ago
    and with the ``/fields`` answer unchanged since the load (the one stored in ``fields``, as
    ``design.py`` compares them): a design change may give the view its keys back."""
    refused_at = state.get(KEYS_REFUSED_STATE)
    if not isinstance(refused_at, str) or state.get("fields") != list(fields):
        return False
    try:
        refused = dt.datetime.fromisoformat(refused_at)
    except ValueError:
        return False
    if refused.tzinfo is None:
        return False
    age = (now or dt.datetime.now(dt.timezone.utc)) - refused
    return dt.timedelta(0) <= age < KEYS_RETRY_AFTER


def remember_keys(
    state: MutableMapping[str, Any], keyed: bool | None, now: dt.datetime | None = None
) -> None:
    """Keeps what this run learned of the view's keys in its state (committed with the load):
    refused (and when), or accepted (the memory goes); nothing when they were not tried."""
    if keyed is False:
        state[KEYS_REFUSED_STATE] = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    elif keyed is True:
        state.pop(KEYS_REFUSED_STATE, None)


def _column(page: RecordPage, name: str) -> list[Any]:
    if page.table is not None:
        return page.table.column(name).to_pylist()
    return [row.get(name) for row in page.rows or []]


def _last_position(keys: ViewKeys, page: RecordPage) -> Position:
    if page.table is not None:
        return tuple(page.table.column(c)[-1].as_py() for c in keys.columns)
    row = (page.rows or [{}])[-1]
    return tuple(row.get(c) for c in keys.columns)


class ViewKeysetReader:
    """The pages of one view (optionally filtered) read by its keys; ``fetch`` sends a call
    and builds its page (it must keep the key columns); ``fallback`` is the string-keyset
    reader used when the keys are refused. After the first page, ``first_page`` and
    ``total_count`` are as ``KeysetReader``'s."""

    def __init__(
        self,
        client: CaspioClient,
        schema: ObjectSchema,
        keys: ViewKeys,
        fallback: KeysetReader,
        fetch: FetchPage,
        *,
        page_size: int = MAX_PAGE_SIZE,
        where: str | None = None,
        select: str | None = None,
        max_workers: int | None = None,
    ) -> None:
        self.client = client
        self.name = schema.name
        self.keys = keys
        self.fallback = fallback
        self.fetch = fetch
        self.page_size = page_size
        self.where = where
        self.select = keys.select(schema, select)
        self.max_workers = max_workers or client.max_workers
        self.keyed: bool | None = None
        """``True`` once the keys were accepted, ``False`` after falling back."""
        self._first: RecordPage | None = None
        self.ranges: list[ViewRange] = []

    @property
    def first_page(self) -> RecordPage | None:
        return self.fallback.first_page if self.keyed is False else self._first

    @property
    def total_count(self) -> int | None:
        page = self.first_page
        return page.total_count if page is not None else None

    def _fetch(self, lower: Position | None, upper: int | None, count: bool = False) -> RecordPage:
        return self.fetch(
            key_params(self.keys, self.page_size, self.select, self.where, lower, upper, count)
        )

    def pages(self) -> Iterator[RecordPage]:
        """Yields pages (out of key order when ranges run concurrently)."""
        try:
            page = self._fetch(None, None, count=True)
        except (CaspioObjectNotFoundError, CaspioQueryRejectedError) as error:
            if not keys_refused(error):
                raise
            logger.debug("%s: Caspio refused its keys (%s): paged by PK_ID", self.name, error)
            self.keyed = False
            yield from self.fallback.pages()
            return
        self.keyed, self._first = True, page
        yield page
        total = page.total_count
        if len(page) < self.page_size or (total is not None and total <= len(page)):
            return
        last = _last_position(self.keys, page)
        self.ranges = split_ranges(
            _column(page, self.keys.first), last, total, self.page_size, self.max_workers
        )
        if len(self.ranges) == 1:
            # one range: no point in a thread hop
            cursor: ViewRange | None = self.ranges[0]
            while cursor is not None:
                page = self._fetch_range(cursor)
                yield page
                cursor = self._follow(page, cursor)
            return
        yield from ConcurrentRanges(
            self.client, self._fetch_range, self._follow, self.ranges
        ).pages()

    def _fetch_range(self, cursor: ViewRange) -> RecordPage:
        return self._fetch(cursor.lower, cursor.upper)

    def _follow(self, page: RecordPage, cursor: ViewRange) -> ViewRange | None:
        """A range is complete on a short page only (``view_keyset.py`` says why)."""
        if len(page) < self.page_size:
            return None
        return ViewRange(_last_position(self.keys, page), cursor.upper)


@dataclasses.dataclass(frozen=True)
class ViewReadPrice:
    """What reading a view costs now: its matching rows and the records calls."""

    rows: int
    page_calls: int


def _count(client: CaspioClient, name: str, where: str | None) -> int:
    params: dict[str, str | int] = {"q.select": f"COUNT({PK_FIELD}) AS n"}
    if where:
        params["q.where"] = where
    result = client.get_records(VIEWS, name, params).data.get("Result") or [{}]
    return int(next((v for k, v in result[0].items() if k.lower() == "n"), 0) or 0)


def price_view_read(
    client: CaspioClient,
    schema: ObjectSchema,
    where: str | None,
    select: str | None,
    page_size: int,
    *,
    by_pk: bool = False,
) -> ViewReadPrice:
    """The records calls ``RecordReader`` will spend on this view, found with the run's own
    decisions: the keys' first page (keys only), then a count per bounded range.

    Planning spends the keys' first page, then one count per bounded range (none for a view
    of one page or one range), or one count when the view is paged by its string ``PK_ID``:
    also when ``by_pk`` (its keys are remembered refused), which then costs no refused call."""
    keys = None if by_pk else view_keys(schema, select, where, page_size)
    if keys is None:
        rows = _count(client, schema.name, where)
        return ViewReadPrice(rows, max(1, math.ceil(rows / page_size)))
    only_keys = ",".join(keys.columns)
    try:
        resp = client.get_records(
            VIEWS, schema.name, key_params(keys, page_size, only_keys, where, count=True)
        )
    except (CaspioObjectNotFoundError, CaspioQueryRejectedError) as error:
        if not keys_refused(error):
            raise
        rows = _count(client, schema.name, where)
        return ViewReadPrice(rows, 1 + max(1, math.ceil(rows / page_size)))
    data = resp.data if isinstance(resp.data, dict) else {}
    first = RecordPage(rows=list(data.get("Result") or []))
    total = total_count(data.get("Pagination"))
    if len(first) < page_size or (total is not None and total <= len(first)):
        return ViewReadPrice(len(first), 1)
    last = _last_position(keys, first)
    ranges = split_ranges(_column(first, keys.first), last, total, page_size, client.max_workers)
    if total is None:  # one open range, read to a short page: count what it will find
        total = _count(client, schema.name, where)
    calls, left = 1, total - len(first)
    for bounded in ranges:
        if bounded.upper is None:  # the open range: what the bounded ones leave
            continue
        clause = and_(keys.after(bounded.lower), keys.upto(bounded.upper), where)
        rows = _count(client, schema.name, clause)
        calls, left = calls + rows // page_size + 1, left - rows
    return ViewReadPrice(total, calls + max(0, left) // page_size + 1)


__all__ = [
    "KEYS_REFUSED_STATE",
    "KEYS_RETRY_AFTER",
    "ViewKeysetReader",
    "ViewReadPrice",
    "keys_refused",
    "keys_remembered_refused",
    "price_view_read",
    "remember_keys",
    "view_keys",
]
