"""What the running pipeline loads into: its location and the tables it already holds.

dlt glue for ``lineage.py``: probed once per extract (one catalog query, no Caspio call) and
shared by every object of the source, so each object can tell whether its state describes this
destination. Outside a pipeline, or into a destination that keeps no tables, there is nothing
to probe and state is trusted as dlt would.
"""

import threading
from collections.abc import Sequence
from typing import Any

import dlt

from .lineage import DestinationFacts, check_account


def _location(config: Any, dataset_name: str | None) -> str:
    """``duckdb:/abs/file.duckdb/caspio``, ``postgres:host:5432/db/caspio``: no credentials."""
    location: str | None = None
    data_location = getattr(config, "data_location", None)
    if callable(data_location):
        try:
            location = data_location()
        except Exception:  # a configuration that cannot name its location
            location = None
    if not location:
        location = config.fingerprint() or "?"
    return f"{config.destination_type}:{location}/{dataset_name}"


def probe_destination(pipeline: Any, table_names: Sequence[str]) -> DestinationFacts | None:
    """The facts of ``pipeline``'s destination, or ``None`` without a destination."""
    if pipeline is None or pipeline.destination is None:
        return None
    client = pipeline.destination_client()
    location = _location(client.config, pipeline.dataset_name)
    if not hasattr(client, "get_storage_tables"):
        return DestinationFacts(location, None)
    with client:
        held = {name for name, columns in client.get_storage_tables(list(table_names)) if columns}
    return DestinationFacts(location, frozenset(held))


MERGING_TABLE_FORMATS = ("delta", "iceberg")
"""The table formats dlt merges into on the filesystem destination; plain files it appends."""


def refuses_merge(pipeline: Any, table_format: object) -> str | None:
    """Why ``pipeline``'s destination would append what the source merges (``None``: it
    merges): the plain filesystem destination writes files, so a merge there becomes an
    append and every changed row a duplicate."""
    destination = getattr(pipeline, "destination", None)
    if destination is None or not str(destination.destination_type).endswith("filesystem"):
        return None
    if table_format in MERGING_TABLE_FORMATS:
        return None
    return (
        "the filesystem destination appends plain files instead of merging, so changed rows "
        "would be duplicated: give the table a table_format of delta or iceberg "
        "(resource.apply_hints(table_format='delta')), or set table_options write_disposition "
        "= 'replace'"
    )


DESTINATION_LOCK = threading.Lock()
"""Held while a worker thread resolves the destination's client (its config): dlt's pool
threads share the main thread's config-section context, and two resolutions at once mangle
it (``ContainerInjectableContextMangled``)."""


class LoadTarget:
    """Whose state the current extract may use: its account is checked and its destination
    probed once per extract, for all objects of the source."""

    def __init__(self, object_names: Sequence[str]) -> None:
        self.object_names = list(object_names)
        self._key: object = None
        self._facts: DestinationFacts | None = None
        self._account_error: Exception | None = None

    def prepare(self, account: str) -> DestinationFacts | None:
        """The destination's facts; raises, before any record call, if the source's state
        belongs to another account than ``account``."""
        with DESTINATION_LOCK:
            try:
                pipeline = dlt.current.pipeline()
            except Exception:  # no active pipeline: a bare source iterated by hand
                pipeline = None
            # the load package's state dict is new for every extract (kept here, so its id
            # cannot be reused while compared)
            try:
                key = dlt.current.load_package_state() if pipeline else None
            except Exception:  # a pipeline is active, but no extract runs (a bare iteration)
                pipeline = key = None
            if key is None or self._key is not key:
                self._key, self._account_error = key, None
                if pipeline is not None:
                    resources = dlt.current.source_state().get("resources") or {}
                    try:
                        check_account(resources, account, pipeline.pipeline_name)
                    except Exception as error:  # every object of this extract fails alike
                        self._account_error = error
                naming = dlt.current.source_schema().naming
                tables = [naming.normalize_table_identifier(n) for n in self.object_names]
                self._facts = probe_destination(pipeline, tables)
            if self._account_error is not None:
                raise self._account_error
            return self._facts
