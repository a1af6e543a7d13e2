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
import math

import numpy as np

from .client import CaspioClient
from .paging import KeysetReader
from .schema import TABLES
from .settings import MAX_PAGE_SIZE, PK_FIELD

DELETED_AT_COLUMN = "_caspio_deleted_at"
"""Timestamp column set on rows deleted in Caspio when a table's ``deletes`` option is "mark"."""


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


def scan_keys(client: CaspioClient, table: str, page_size: int = MAX_PAGE_SIZE) -> KeyScan:
    """Every PK_ID of ``table`` in a sorted int64 array, read in key order one page after
    another (``paging.KeysetReader`` without ranges): it stops on a short page, or once the
    keys read reach the first call's TotalCount, so a table of exactly 2,000 rows costs 2
    calls, not 3. A row inserted after the first call is new, so it cannot be a delete."""
    pager = KeysetReader(
        client, TABLES, table, page_size=page_size, select=PK_FIELD, ranges=False, call="keys"
    )
    pages: list[np.ndarray] = []
    for page in pager.pages():
        pages.append(np.asarray([int(row[PK_FIELD]) for row in page.rows or []], dtype=np.int64))
    merged = np.unique(np.concatenate(pages)) if pages else np.empty(0, dtype=np.int64)
    return KeyScan(table=table, keys=merged, calls=len(pages), total_count=pager.total_count)


def missing_keys(destination_keys: np.ndarray, live_keys: np.ndarray) -> np.ndarray:
    """Keys present in the destination but no longer in Caspio (sorted, unique)."""
    return np.setdiff1d(
        np.asarray(destination_keys, dtype=np.int64),
        np.asarray(live_keys, dtype=np.int64),
        assume_unique=False,
    )
