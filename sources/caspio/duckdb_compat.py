"""DuckDB 2 under dlt 1.31: the one cursor call of dlt's that DuckDB 2 removed, answered.

Why: DuckDB 2 inserts a sync's rows in about 70% of 1.x's CPU, without importing pandas, and
a 1M-row sync peaks about 60 MB lower (docs/benchmarks-analysis.md). dlt 1.31 reads a whole
result as Arrow with ``cursor.fetch_arrow_table()``, which DuckDB 2 renamed
``to_arrow_table()``, so ``pipeline.dataset().<table>.arrow()`` failed on it. Only that branch
of dlt's DuckDB cursor is replaced, only when the installed DuckDB lacks the old name. The
version is read from the package metadata and the patch waits until dlt imports its DuckDB
client, so a sync into another destination does not import DuckDB for it. DuckDB 2's warning
about the extra copy such a read makes is silenced: it advises dlt's code, not the user who
would see it under every read.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import sys
import types
import warnings
from collections.abc import Callable, Generator
from typing import Any


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


_DLT_DUCKDB_CURSOR_MODULE = "dlt.destinations.impl.duckdb.sql_client"


def install() -> bool:
    """Teaches dlt's DuckDB cursor DuckDB 2's name for a whole Arrow result, now if dlt's
    DuckDB client is loaded, else when it is (``_PatchOnImport``); True if DuckDB is 2.x."""
    try:
        if _major(importlib.metadata.version("duckdb")) < 2:
            return False
    except importlib.metadata.PackageNotFoundError:
        return False
    module = sys.modules.get(_DLT_DUCKDB_CURSOR_MODULE)
    if module is not None:
        _patch(module)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    return True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches dlt's DuckDB client module right after it is first imported, so that a sync into
    another destination never imports DuckDB for this."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _DLT_DUCKDB_CURSOR_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)


def _patch(module: types.ModuleType) -> None:
    import duckdb

    if hasattr(duckdb.DuckDBPyConnection, "fetch_arrow_table"):
        return  # dlt's own call still works
    # DuckDB 2 warns on every Arrow read of a DB-API result, which is how dlt reads: advice
    # for dlt's code, not for the user who sees it under every ``dataset().<table>.arrow()``
    warnings.filterwarnings(
        "ignore",
        message="Arrow output on a DB-API result makes an extra copy",
        category=UserWarning,
    )
    cursor = module.DuckDBDBApiCursorImpl
    if not getattr(cursor.iter_arrow, "_caspio_compat", False):
        cursor.iter_arrow = _whole_result_by_new_name(cursor.iter_arrow)


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
