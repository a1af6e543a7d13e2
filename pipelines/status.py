"""`caspio-sync status`: each table's last sync, rows, calls, cursor mark and design notes.

Read from the pipeline's own folder and the destination only: zero Caspio API calls, so it can
run every minute from a monitor. What dlt's state does not keep (when each table was last
synced, whether that run succeeded, the calls it spent, the design changes it saw) ``run_sync``
records after every run in ``caspio_runs.json`` next to dlt's ``state.json``
(``record_run``); the cursor mark is the resource state dlt commits with each load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.pipeline.pipeline import Pipeline

from sources.caspio import CaspioClient, object_state, resource_name

from .cleanup import STATUS_TEMP_SUFFIX

RUNS_FILE = "caspio_runs.json"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_run(
    pipeline: Pipeline,
    client: CaspioClient,
    before: dict[str, Any],
    outcome: str,
    error: str | None = None,
    completed: list[str] | None = None,
) -> None:
    """Record what this run did per table (``outcome``: ok, failed, interrupted, budget);
    ``completed`` names the tables loaded when the run as a whole did not succeed."""
    path = Path(pipeline.working_dir) / RUNS_FILE
    data = _load(path)
    after = client.stats.snapshot()
    at = _now()
    tables: dict[str, Any] = data.setdefault("tables", {})
    old_objects = before.get("objects", {})
    naming = pipeline.default_schema.naming if pipeline.default_schema_name else None
    done = {resource_name(c, naming) for c in completed or []}
    for name, counts in after["objects"].items():
        old = old_objects.get(name, {})
        calls = counts["calls"] - old.get("calls", 0)
        if calls <= 0:
            continue
        entry = tables.setdefault(name, {})
        ok = outcome == "ok" or resource_name(name, naming) in done
        entry["last_attempt_at"] = at
        entry["last_outcome"] = "ok" if ok else outcome
        entry["calls_last_run"] = calls
        entry["rows_read_last_run"] = counts["rows"] - old.get("rows", 0)
        old_notes = before.get("notes", {}).get(name, [])
        entry["design_notes"] = after["notes"].get(name, [])[len(old_notes) :]
        if ok:
            entry["last_success_at"] = at
    data["last_run"] = {
        "at": at,
        "outcome": outcome,
        "error": error,
        "api_calls": after["calls"] - before["calls"],
    }
    tmp = path.with_name(path.name + f".{os.getpid()}{STATUS_TEMP_SUFFIX}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), "utf-8")
    os.replace(tmp, path)


def record_failure(
    pipeline: Pipeline,
    client: CaspioClient,
    before: dict[str, Any],
    exc: BaseException,
    completed: list[str] | None = None,
) -> None:
    """``record_run`` for a run that raised: interrupted or failed, with its one-line cause.
    Never raises: the run's own error is what the caller must see."""
    from . import interrupts
    from .errors import describe_error

    stopped = interrupts.received() or isinstance(exc, KeyboardInterrupt)
    outcome = "interrupted" if stopped else "failed"
    error = None if stopped else describe_error(exc)
    with contextlib.suppress(Exception):  # the status file is a convenience
        record_run(pipeline, client, before, outcome, error, completed)


@dataclasses.dataclass
class Status:
    """What ``status`` shows: the pipeline, its last run, and one entry per table."""

    pipeline_name: str
    destination: str
    dataset_name: str
    location: str | None
    last_run: dict[str, Any] | None
    tables: list[dict[str, Any]]
    note: str | None = None

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, default=str)

    def summary(self) -> str:
        where = f" at {self.location}" if self.location else ""
        lines = [
            f"pipeline {self.pipeline_name}: {self.destination} dataset "
            f"'{self.dataset_name}'{where}"
        ]
        if self.note:
            lines.append(self.note)
        run = self.last_run
        if run:
            text = f"last run {run['at']}: {run['outcome']}, {run['api_calls']:,} Caspio API calls"
            lines.append(text + (f" ({run['error']})" if run.get("error") else ""))
        if not self.tables:
            return "\n".join(lines)
        header = ["table", "last synced", "result", "rows", "calls", "cursor mark"]
        rows = [header]
        for t in self.tables:
            cursor = t.get("cursor") or {}
            mark = f"{cursor.get('field')} > {cursor.get('value')}" if cursor else "-"
            if t.get("last_pk") is not None:
                mark = f"PK_ID > {t['last_pk']}"
            rows.append(
                [
                    t["name"],
                    t.get("last_success_at") or "never",
                    t.get("last_outcome") or "-",
                    "?" if t.get("rows") is None else f"{t['rows']:,}",
                    "-" if t.get("calls_last_run") is None else f"{t['calls_last_run']:,}",
                    mark,
                ]
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        for t in self.tables:
            lines += [f"{t['name']}: {note}" for note in t.get("design_notes") or []]
        return "\n".join(lines)


def run_status(
    destination: str = "duckdb",
    dataset_name: str | None = None,
    pipeline_name: str | None = None,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
) -> Status:
    """The status of one pipeline (the one ``run`` with the same flags writes)."""
    from .setup import (
        DEFAULT_DATASET_NAME,
        DEFAULT_PIPELINE_NAME,
        build_pipeline,
        duckdb_path,
    )

    name = pipeline_name or DEFAULT_PIPELINE_NAME
    dataset = dataset_name or DEFAULT_DATASET_NAME
    folder = Path(pipelines_dir or get_dlt_pipelines_dir()) / name
    if not folder.is_dir():
        return Status(
            name, destination, dataset, None, None, [], note="no run yet: `caspio-sync run`"
        )
    pipeline = build_pipeline(destination, dataset, name, duckdb_file, pipelines_dir)
    runs = _load(folder / RUNS_FILE)
    resources = _resource_states(pipeline)
    recorded: dict[str, Any] = runs.get("tables", {})
    location = duckdb_path(duckdb_file, name) if destination == "duckdb" else None
    counts, note = _row_counts(pipeline, location)
    naming = pipeline.default_schema.naming if pipeline.default_schema_name else None
    # one line per object: its state is keyed by table name (older state by Caspio name) and
    # its runs by the spelling that selected it, so both are grouped by the table name
    names: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    for table in sorted(recorded, key=lambda t: str(recorded[t].get("last_attempt_at", ""))):
        key = resource_name(table, naming)
        names[key] = table
        entries.setdefault(key, {}).update(recorded[table])
    for table in resources:
        names.setdefault(resource_name(table, naming), table)
    tables = []
    for normalized in sorted(names):
        table = names[normalized]
        state = object_state(resources, table, naming)
        entry = entries.get(normalized, {})
        entry.update(
            name=table,
            table=normalized,
            rows=counts.get(normalized),
            cursor=state.get("cursor"),
            last_pk=state.get("last_pk"),
        )
        tables.append(entry)
    return Status(name, destination, dataset, location, runs.get("last_run"), tables, note=note)


def _resource_states(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    sources = pipeline.state.get("sources", {})
    caspio = sources.get("caspio", {}) if isinstance(sources, dict) else {}
    resources = caspio.get("resources", {}) if isinstance(caspio, dict) else {}
    return {k: v for k, v in resources.items() if isinstance(v, dict)}


def _row_counts(pipeline: Pipeline, duckdb_file: str | None) -> tuple[dict[str, int], str | None]:
    """Rows per destination table; with a note instead when the destination cannot answer."""
    if duckdb_file is not None and not Path(duckdb_file).exists():
        return {}, f"destination file {duckdb_file} does not exist (yet)"
    try:
        relation = pipeline.dataset().row_counts(data_tables=True)
        return {str(t): int(n) for t, n in relation.fetchall()}, None
    except Exception as exc:  # noqa: BLE001 - status must show what it can
        from .errors import describe_error

        return (
            {},
            f"row counts unavailable: {describe_error(exc, pipeline.destination.destination_name)}",
        )


__all__ = ["RUNS_FILE", "Status", "record_run", "run_status"]
