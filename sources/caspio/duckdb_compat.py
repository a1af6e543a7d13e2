"""DuckDB 2 under dlt 1.31: the one cursor call of dlt's that DuckDB 2 removed, answered.

Why: DuckDB 2 loads a sync in about two thirds of 1.x's CPU and without importing pandas, and
its process peaks about 120 MB lower (docs/benchmarks-analysis.md). dlt 1.31 reads a whole
result as Arrow with ``cursor.fetch_arrow_table()``, which DuckDB 2 renamed
``to_arrow_table()``, so ``pipeline.dataset().<table>.arrow()`` failed on it. Only that branch
of dlt's DuckDB cursor is replaced, only when the installed DuckDB lacks the old name, and the
version is read from the package metadata first, so a user of another destination does not
import DuckDB for it. DuckDB 2's warning about the extra copy such a read makes is silenced:
it advises dlt's code, not the user who would see it under every read.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Generator
from typing import Any


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def install() -> bool:
    """Teaches dlt's DuckDB cursor DuckDB 2's name for a whole Arrow result; True if it did."""
    try:
        if _major(importlib.metadata.version("duckdb")) < 2:
            return False
    except importlib.metadata.PackageNotFoundError:
        return False
    import duckdb
    from dlt.destinations.impl.duckdb.sql_client import DuckDBDBApiCursorImpl

    if hasattr(duckdb.DuckDBPyConnection, "fetch_arrow_table"):
        return False  # dlt's own call still works
    # DuckDB 2 warns on every Arrow read of a DB-API result, which is how dlt reads: advice
    # for dlt's code, not for the user who sees it under every ``dataset().<table>.arrow()``
    warnings.filterwarnings(
        "ignore",
        message="Arrow output on a DB-API result makes an extra copy",
        category=UserWarning,
    )
    if getattr(DuckDBDBApiCursorImpl.iter_arrow, "_caspio_compat", False):
        return True
    DuckDBDBApiCursorImpl.iter_arrow = _whole_result_by_new_name(  # type: ignore[method-assign,assignment]
        DuckDBDBApiCursorImpl.iter_arrow
    )
    return True


def _whole_result_by_new_name(
    iter_arrow: Callable[[Any, int], Generator[Any, None, None]],
) -> Callable[[Any, int], Generator[Any, None, None]]:
    """dlt's ``iter_arrow``, with its no-chunk branch calling ``to_arrow_table()``; chunks go
    to dlt's own code, which already uses DuckDB's ``to_arrow_reader``."""

    def patched(self: Any, chunk_size: int) -> Generator[Any, None, None]:
        if not chunk_size:
            yield self.native_cursor.to_arrow_table()
            return
        yield from iter_arrow(self, chunk_size)

    patched._caspio_compat = True  # type: ignore[attr-defined]
    patched.__doc__ = iter_arrow.__doc__
    return patched


__all__ = ["install"]
