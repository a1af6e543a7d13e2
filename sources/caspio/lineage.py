"""Whose state is this? Incremental state belongs to one Caspio account and one destination.

A cursor mark says "every row up to here is in *that* destination, read from *that* account".
Applied to another account it skips that account's rows; applied to another DuckDB file, dataset
or a dropped table it skips rows that were never loaded there. Each object's state therefore
records both, and a run:

- stops before any record call when the state was built from another account (one line naming
  both, and the two ways out);
- reads an object in full when its state was built for another destination, and says why;
- stops, naming the command that reloads it, when the destination no longer holds a table its
  state says was loaded there (dropped by hand: dlt would not create it again on its own).

A new DuckDB file or dataset needs neither: dlt itself drops a pipeline's local state when the
destination has no dataset, so the next run reads everything.

State written before these keys existed is taken as belonging to the current run's account and
destination (a table's existence is still checked).
"""

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from .errors import CaspioConfigError

ACCOUNT_KEY = "account"
DESTINATION_KEY = "destination"
LOADED_KEYS = ("fields", "cursor", "last_pk", "read_with")
"""The state keys that describe what was loaded (dropped when the object is read in full)."""


@dataclasses.dataclass(frozen=True)
class DestinationFacts:
    """Where this run loads: ``location`` (a path or ``host:port/database`` plus the dataset,
    never a credential) and the tables it holds (``None``: the destination cannot tell)."""

    location: str
    tables: Collection[str] | None = None


class CaspioAccountMismatchError(CaspioConfigError):
    """The pipeline's state was built from another Caspio account than these credentials'."""


def check_account(
    states: Mapping[str, Mapping[str, Any]], account: str, pipeline_name: str | None
) -> None:
    """Raise when any object's state records another account than ``account``."""
    others = sorted(
        {str(s[ACCOUNT_KEY]) for s in states.values() if s.get(ACCOUNT_KEY) not in (None, account)}
    )
    if not others:
        return
    name = pipeline_name or "this pipeline"
    raise CaspioAccountMismatchError(
        f"The state of pipeline '{name}' was built from Caspio account {', '.join(others)}, but "
        f"the credentials are for {account}: nothing was read. Give each account its own "
        "pipeline (caspio-sync --pipeline-name NAME, or dlt.pipeline('NAME')), or replace the "
        "loaded data with this account's (caspio-sync run --full-refresh)"
    )


def stale_reason(
    state: Mapping[str, Any], facts: DestinationFacts | None, object_name: str, table_name: str
) -> str | None:
    """Why an object's loaded state does not describe this run's destination (``None``: it
    does); raises when the destination lost the object's table.

    ``table_name`` is the destination's (normalized) table name of the object."""
    if facts is None or not any(k in state for k in LOADED_KEYS):
        return None
    recorded = state.get(DESTINATION_KEY)
    if recorded is not None and recorded != facts.location:
        return f"its state was built for another destination ({recorded})"
    if facts.tables is not None and table_name not in facts.tables:
        raise CaspioConfigError(
            f"{object_name}: the destination ({facts.location}) no longer holds table "
            f"{table_name}, which this pipeline loaded there; nothing was read. Reload it: "
            f"caspio-sync run --tables {object_name} --full-refresh (Python: pipeline.run("
            f"caspio(tables=[{object_name!r}]), refresh='drop_resources'))"
        )
    return None


def forget_loaded(state: dict[str, Any]) -> None:
    """Drop what the state says was loaded, so the object is read as on its first run."""
    for key in LOADED_KEYS:
        state.pop(key, None)


def bind(state: dict[str, Any], account: str, facts: DestinationFacts | None) -> None:
    """Record whose state this is, once the object's read is complete."""
    state[ACCOUNT_KEY] = account
    if facts is not None:
        state[DESTINATION_KEY] = facts.location
