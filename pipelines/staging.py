"""Each named pipeline stages its merges in a dataset of its own, unless the user chose a layout.

Why: dlt loads a merge into ``<dataset>_staging.<table>`` and merges it from there, truncating
that table before each load. Pipelines of different names that load into one dataset at once
(two cron entries, the Airflow DAG's table tasks, tasks in threads of one process) all merge
the call ledger's copy, so through one shared staging table one load truncated or merged
another's rows: seen as a unique-key violation in PostgreSQL, and it could as well have lost a
load's ledger rows. The default pipeline keeps dlt's ``<dataset>_staging``, so existing
destinations see no change; any other pipeline stages in ``<dataset>_staging_<pipeline>``.
A DuckDB file has one writer at a time, so nothing loads beside it and it keeps dlt's layout.
The setting travels with the pipeline's destination, not the process's environment, so
pipelines in threads of one process cannot take it from each other.
"""

from __future__ import annotations

import copy
from typing import Any

import dlt
from dlt.common.destination.reference import Destination

LAYOUT_SETTING = "staging_dataset_name_layout"


def with_own_staging(destination: str | Any, pipeline_name: str, default_name: str) -> Any:
    """``destination`` (a name or a factory) with the staging layout of ``pipeline_name``: the
    destination as it is for the default pipeline, DuckDB, or a layout the user configured."""
    if pipeline_name == default_name:
        return destination
    factory = (
        destination
        if isinstance(destination, Destination)
        else Destination.from_reference(destination)
    )
    if factory is None or factory.destination_type.rsplit(".", 1)[-1] == "duckdb":
        return destination
    if LAYOUT_SETTING in factory.config_params or _configured(factory.destination_name):
        return destination
    own = copy.copy(factory)
    own.config_params = {**factory.config_params, LAYOUT_SETTING: f"%s_staging_{pipeline_name}"}
    return own


def _configured(destination_name: str) -> bool:
    return any(
        dlt.config.get(f"destination.{section}{LAYOUT_SETTING}") is not None
        for section in (f"{destination_name}.", "")
    )
