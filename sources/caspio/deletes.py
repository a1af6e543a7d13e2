"""Which destination rows were deleted in Caspio: read every live PK_ID, cheaply.

Caspio keeps no record of deletes: a deleted row simply vanishes, so an incremental sync (which
only reads rows whose cursor moved) keeps the row in the warehouse for ever. The only way to
learn which rows are gone is to list the keys that still exist. This module does that at the
lowest cost the API allows: ``q.select=PK_ID`` (a few bytes per row instead of whole records),
1,000 keys per call (Caspio's maximum), paged by key (``PK_ID > last ORDER BY PK_ID``) so rows
inserted or deleted during the scan cannot shift pages, and the first call asks for
``q.getPaginationInfo`` so the scan stops after ``ceil(rows / 1000)`` calls without the extra
empty call a short-page rule needs when the row count is a multiple of 1,000.

Applying the difference to a destination is the pipeline layer's job (``pipelines/reconcile.py``):
this module only talks to Caspio and never imports dlt's destination machinery.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from .errors import CaspioConfigError
from .settings import MAX_PAGE_SIZE, MIN_PAGE_SIZE, PK_FIELD

DeleteMode = Literal["delete", "mark", "off"]
DELETE_MODES: tuple[DeleteMode, ...] = ("delete", "mark", "off")
DEFAULT_DELETE_MODE: DeleteMode = "delete"
DELETED_AT_COLUMN = "_caspio_deleted_at"
"""Timestamp column set on rows deleted in Caspio when a table's ``deletes`` option is "mark"."""


def delete_mode(table: str, table_options: Mapping[str, Any] | None) -> DeleteMode:
    """The ``deletes`` option of one table (``table_options.<T>.deletes``), validated.

    Table names match case-insensitively, as Caspio matches them in paths.
    """
    options = _options_for(table, table_options)
    mode = options.get("deletes", DEFAULT_DELETE_MODE) if options else DEFAULT_DELETE_MODE
    if mode is True:
        mode = "delete"
    if mode is False or mode is None:
        mode = "off"
    if mode not in DELETE_MODES:
        raise CaspioConfigError(
            f"table_options.{table}.deletes = {mode!r} is not valid: use one of "
            f"{', '.join(repr(m) for m in DELETE_MODES)}"
        )
    return mode


def _options_for(table: str, table_options: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Merged options for ``table``: glob patterns first, then the exact name (as the sync)."""
    merged: dict[str, Any] = {}
    items = [(str(k), v) for k, v in (table_options or {}).items() if isinstance(v, Mapping)]
    lowered = table.lower()
    for key, options in items:
        if any(c in key for c in "*?[") and fnmatch.fnmatchcase(lowered, key.lower()):
            merged.update(options)
    for key, options in items:
        if key.lower() == lowered:
            merged.update(options)
    return merged


@dataclasses.dataclass
class KeyScan:
    """All PK_IDs of one table at scan time, and what reading them cost."""

    table: str
    keys: np.ndarray  # sorted int64
    calls: int
    total_count: int | None

    @property
    def expected_calls(self) -> int:
        """The documented cost: one call per 1,000 keys, and one for an empty table."""
        return scan_cost(len(self.keys))


def scan_cost(rows: int, page_size: int = MAX_PAGE_SIZE) -> int:
    """API calls a PK_ID scan of a table with ``rows`` rows spends: ``max(1, ceil(rows/1000))``."""
    return max(1, math.ceil(rows / page_size))


def iter_pk_pages(
    client: Any, table: str, page_size: int = MAX_PAGE_SIZE
) -> Iterator[tuple[list[int], int | None]]:
    """Pages of PK_IDs in key order, each with the TotalCount reported by the first call.

    Stops on a short page, or as soon as the keys read reach the first call's TotalCount, so a
    table of exactly 2,000 rows costs 2 calls, not 3. A row inserted after the first call and
    above the last key read is not seen: it is new, so it cannot be a delete.
    """
    if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise CaspioConfigError(f"page_size must be {MIN_PAGE_SIZE}..{MAX_PAGE_SIZE}")
    last: int | None = None
    total: int | None = None
    seen = 0
    path = f"/tables/{table}/records"
    while True:
        params: dict[str, Any] = {
            "q.select": PK_FIELD,
            "q.orderBy": f"{PK_FIELD} ASC",
            "q.pageSize": page_size,
            "q.pageNumber": 1,
        }
        if last is not None:
            params["q.where"] = f"{PK_FIELD} > {int(last)}"
        else:
            params["q.getPaginationInfo"] = "true"
        body = client.get(path, params, kind="keys")
        rows = body.get("Result") or []
        if last is None:
            pagination = body.get("Pagination") or {}
            count = pagination.get("TotalCount")
            total = int(count) if count is not None else None
        keys = [int(row[PK_FIELD]) for row in rows]
        seen += len(keys)
        yield keys, total
        if len(keys) < page_size or (total is not None and seen >= total) or not keys:
            return
        last = keys[-1]


def scan_keys(client: Any, table: str, page_size: int = MAX_PAGE_SIZE) -> KeyScan:
    """Reads every PK_ID of ``table`` (see :func:`iter_pk_pages`) into a sorted int64 array."""
    pages: list[np.ndarray] = []
    calls = 0
    total: int | None = None
    for keys, page_total in iter_pk_pages(client, table, page_size):
        calls += 1
        total = page_total
        pages.append(np.asarray(keys, dtype=np.int64))
    merged = np.unique(np.concatenate(pages)) if pages else np.empty(0, dtype=np.int64)
    return KeyScan(table=table, keys=merged, calls=calls, total_count=total)


def missing_keys(destination_keys: np.ndarray, live_keys: np.ndarray) -> np.ndarray:
    """Keys present in the destination but no longer in Caspio (sorted, unique)."""
    return np.setdiff1d(
        np.asarray(destination_keys, dtype=np.int64),
        np.asarray(live_keys, dtype=np.int64),
        assume_unique=False,
    )
