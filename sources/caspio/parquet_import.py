"""An object's Arrow pages -> one Parquet file that dlt imports as it is (``with_file_import``).

Why: dlt's extract writes Arrow items to Parquet through a Python file object, so each of the
thousands of page writes in a large table needs the GIL while the fetch threads decode pages
(the main thread waited far longer than it computed). Written here, to a native file from the
resource's own worker thread, the writes run outside the GIL,
and dlt's extract only links the finished file into the load package.

The file lives inside the load package being extracted, so dlt deletes it with the package
(after normalize, or with a package that failed to extract): nothing to clean up, and a hard
link on the same disk, not a copy.

Only taken where it cannot change what lands: the destination loads Parquet itself (DuckDB;
not PostgreSQL, not a staged warehouse), no schema contract may drop columns, no column would
change type, and dlt adds no ``_dlt_load_id``/``_dlt_id`` columns. Everywhere else the pages go
to dlt as Arrow items, as before.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, cast

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.configuration.container import Container
from dlt.common.schema import Schema
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.storages.load_package import LoadPackageStateInjectableContext
from dlt.extract.pipe import Pipe

from .schema import changed_column_types

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "version": "2.6",
    "use_dictionary": False,
    "write_statistics": False,
}
"""dlt's own defaults (snappy, format 2.6), but no dictionary encoding, which dlt's writer has no
setting for: Caspio's text columns are mostly distinct values, so building dictionaries is CPU
spent for a larger file (faster and smaller without: docs/benchmarks-analysis.md). No column
statistics either: the file lives only until DuckDB inserts all of it, which reads no min/max."""


class ParquetImport:
    """Row groups of one object into one Parquet file, then the item that hands it to dlt."""

    def __init__(self, directory: str, table_name: str, names: list[str]) -> None:
        self.path = os.path.join(directory, f"{table_name}.{uuid.uuid4().hex}.parquet")
        self.names = names
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        table = table.rename_columns(self.names)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, **PARQUET_OPTIONS)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def item(self, hints: Any) -> Any:
        """The item to yield once the file is complete."""
        self.close()
        return dlt.mark.with_file_import(self.path, "parquet", self.rows, hints=hints)


def parquet_import(columns: TTableSchemaColumns, arrow_names: list[str]) -> ParquetImport | None:
    """A ParquetImport for the running resource, or None where dlt must write the pages."""
    table_name = _plain_resource_table()
    if table_name is None or not _destination_loads_parquet() or _adds_dlt_columns():
        return None
    schema = dlt.current.source_schema()
    names = [schema.naming.normalize_identifier(n) for n in arrow_names]
    if len(set(names)) != len(names):
        return None  # two fields normalise to one column: dlt's own path reports it
    table_name = schema.naming.normalize_table_identifier(table_name)
    if _contract_in_schema(schema, table_name) or changed_column_types(schema, table_name, columns):
        return None
    directory = _package_directory()
    if directory is None:
        return None
    return ParquetImport(directory, table_name, names)


def _plain_resource_table() -> str | None:
    """The resource's table name, if dlt would hand our items straight to its extractor: a map,
    filter or incremental the user added, or a schema contract, must see the rows themselves."""
    try:
        source = dlt.current.source()
        resource = dlt.current.resource()
        steps = cast(Pipe, dlt.current.pipe()).steps
    except Exception:  # not inside dlt's extract (a resource iterated by hand)
        return None
    if len(steps) != 1 or source.schema_contract or resource.schema_contract:
        return None
    table_name = resource.table_name
    return table_name if isinstance(table_name, str) else None


def _package_directory() -> str | None:
    try:
        context = Container()[LoadPackageStateInjectableContext]
    except Exception:  # outside dlt's extract (a resource iterated by hand)
        return None
    storage = context.storage
    if storage is None or context.load_id is None:
        return None
    directory = storage.storage.make_full_path(
        os.path.join(storage.get_package_path(context.load_id), "caspio_parquet")
    )
    os.makedirs(directory, exist_ok=True)
    return directory


def _destination_loads_parquet() -> bool:
    try:
        pipeline = dlt.current.pipeline()
    except Exception:
        return False
    if pipeline.destination is None or pipeline.staging is not None:
        return False
    if dlt.config.get("normalize.loader_file_format") not in (None, "parquet"):
        return False
    formats = pipeline.destination.capabilities().supported_loader_file_formats
    return "parquet" in formats


def _contract_in_schema(schema: Schema, table_name: str) -> bool:
    table = schema.tables.get(table_name) or {}
    return bool(schema.settings.get("schema_contract") or table.get("schema_contract"))


def _adds_dlt_columns() -> bool:
    return any(
        dlt.config.get(f"normalize.parquet_normalizer.{key}", bool)
        for key in ("add_dlt_load_id", "add_dlt_id")
    )
