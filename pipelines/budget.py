"""`caspio-sync run --max-calls N`: sync table by table and stop before call N + 1.

The client refuses any call past the budget *before* sending it (``CallBudget.charge`` raises
``CallBudgetExceeded``). dlt drops everything a failed extract produced, so a single
``pipeline.run`` over all tables would lose the tables already read when the budget runs out.
Here each table is its own ``pipeline.run`` (extract, normalize, load, state commit), in the
source's order: when the budget stops table k, tables 1..k-1 are loaded with their state
committed, table k's half-read pages are discarded with its state untouched, and the next run
(budgeted or not) picks up from there. Tables run one after another in this mode, so a budgeted
run trades cross-table concurrency (pages within a table are still fetched concurrently) for
the guarantee.
"""

from __future__ import annotations

import dataclasses
import time

from dlt.pipeline.exceptions import PipelineStepFailed
from typing_extensions import Unpack

from sources.caspio import (
    CallBudget,
    CallBudgetExceeded,
    caspio,
    exception_chain,
)

from . import interrupts
from .caspio_pipeline import (
    SyncReport,
    report_fields,
    rows_loaded,
    source_arguments,
)
from .cleanup import remove_orphans
from .setup import SyncArgs, open_sync
from .status import record_failure, record_run


@dataclasses.dataclass
class BudgetedSyncReport(SyncReport):
    """A ``SyncReport`` plus where the budget stopped the run (``None``: it did not)."""

    max_calls: int = 0
    completed: list[str] = dataclasses.field(default_factory=list)
    not_synced: list[str] = dataclasses.field(default_factory=list)
    stopped: CallBudgetExceeded | None = None

    def summary(self) -> str:
        text = super().summary() + f" of --max-calls {self.max_calls:,}"
        if self.stopped is not None:
            before = ", ".join(self.not_synced) or "the tables were listed"
            text += (
                f"\nstopped by the call budget before {before}: "
                f"{len(self.completed)} table(s) loaded; the next run resumes with the rest"
            )
        return text


def _budget_error(exc: BaseException) -> CallBudgetExceeded | None:
    """The ``CallBudgetExceeded`` inside dlt's wrappers, if that is what failed."""
    return next((e for e in exception_chain(exc) if isinstance(e, CallBudgetExceeded)), None)


def run_with_budget(max_calls: int, **args: Unpack[SyncArgs]) -> BudgetedSyncReport:
    """Sync like ``run_sync`` but spend at most ``max_calls`` Caspio API calls (tokens included).

    Returns a report whose ``stopped`` is set when the budget ran out; a failure of any other
    kind propagates as from ``run_sync``.
    """
    started = time.perf_counter()
    setup = open_sync(**args)
    settings, client, pipeline = setup.settings, setup.client, setup.pipeline
    client.budget = interrupts.budget(CallBudget(max_calls))
    before = client.stats.snapshot()
    remove_orphans(pipeline)
    rows: dict[str, int] = {}
    completed: list[str] = []
    names: list[str] = []
    stopped: CallBudgetExceeded | None = None
    try:
        source = caspio(credentials=client.credentials, client=client, **source_arguments(settings))
        names = list(source.resources.keys())
        for name in names:
            try:
                pipeline.run(source.with_resources(name))
            except PipelineStepFailed as exc:
                stopped = _budget_error(exc)
                if stopped is None:
                    raise
                break
            completed.append(name)
            rows.update(rows_loaded(pipeline))
    except CallBudgetExceeded as exc:  # the budget ran out while listing tables
        stopped = exc
    except BaseException as exc:
        remove_orphans(pipeline)
        record_failure(pipeline, client, before, exc, completed)
        raise
    finally:
        client.budget = interrupts.budget(None)
    if stopped is not None:
        remove_orphans(pipeline)
    record_run(pipeline, client, before, "ok" if stopped is None else "budget", None, completed)
    return BudgetedSyncReport(
        **report_fields(pipeline, client, before, started, rows),
        load_info=pipeline.last_trace.last_load_info if pipeline.last_trace else None,
        max_calls=max_calls,
        completed=completed,
        not_synced=[n for n in names if n not in completed],
        stopped=stopped,
    )
