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

``monthly_call_budget`` (``[sources.caspio]``) takes the same path: the calls already spent in
the quota period (the call ledger, local and destination copies) are subtracted from it, and
the run stops before the call that would exceed the rest, naming the day the period resets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from dlt.pipeline.exceptions import PipelineStepFailed
from typing_extensions import Unpack

from sources.caspio import (
    CallBudget,
    CallBudgetExceeded,
    CaspioError,
    LedgerEntry,
    call_ledger_of,
    caspio,
    exception_chain,
    flush_call_ledgers,
    read_entries,
)

from . import interrupts
from .caspio_pipeline import (
    SyncReport,
    ledger_sources,
    report_fields,
    rows_loaded,
    source_arguments,
)
from .cleanup import remove_orphans
from .setup import SyncArgs, SyncSetup, open_sync
from .status import record_failure, record_run
from .usage import merge_entries, period_calls, quota_period, read_destination


class MonthlyBudgetExceeded(CallBudgetExceeded):
    """The next API call would exceed ``monthly_call_budget`` in this quota period."""

    def __init__(
        self, budget: int, used: int, resets: dt.date, call: str, obj: str | None, kept: str
    ) -> None:
        self.limit = budget
        self.spent = used
        self.resets = resets
        what = f"{call} call for {obj!r}" if obj else f"{call} call"
        CaspioError.__init__(
            self,
            f"monthly call budget reached: {used:,} of monthly_call_budget {budget:,} Caspio API "
            f"calls used this quota period, the next ({what}) was not sent; {kept}; the period "
            f"resets on {resets.isoformat()} (or raise monthly_call_budget in [sources.caspio] "
            "/ SOURCES__CASPIO__MONTHLY_CALL_BUDGET)",
        )


class MonthlyCallBudget(CallBudget):
    """What is left of ``monthly_call_budget`` after the period's ``used`` calls, checked after
    ``inner`` (``--max-calls``), so that the tighter of the two names itself; ``kept`` says
    what a stop keeps."""

    def __init__(
        self, budget: int, used: int, resets: dt.date, inner: CallBudget | None, kept: str
    ) -> None:
        super().__init__(max(0, budget - used))
        self.budget, self.used, self.resets, self.inner = budget, used, resets, inner
        self.kept = kept

    def charge(self, call: str = "other", obj: str | None = None) -> None:
        if self.inner is not None:
            self.inner.charge(call, obj)
        with self._lock:
            if self.spent >= self.limit:
                raise MonthlyBudgetExceeded(
                    self.budget, self.used + self.spent, self.resets, call, obj, self.kept
                )
            self.spent += 1


def monthly_budget(
    setup: SyncSetup, inner: CallBudget | None, by_table: bool = True
) -> CallBudget | None:
    """``inner`` capped by ``monthly_call_budget`` when it is set, counting the calls the
    account's ledger (this machine's and the destination's copy) holds for this period;
    ``by_table``: the run loads table by table (else a stop loads nothing of it)."""
    settings, client = setup.settings, setup.client
    if settings.monthly_call_budget is None:
        return inner
    now = dt.datetime.now(dt.timezone.utc)
    start, end = quota_period(now, settings.quota_period_start_day, settings.quota_time_zone)
    flush_call_ledgers()
    ledger = call_ledger_of(client)
    local = read_entries(ledger.path, start) if ledger else []
    remote: list[LedgerEntry] = []
    if settings.call_ledger_in_destination:
        remote = read_destination(setup.pipeline, start)[0]
    entries = period_calls(merge_entries(local, remote), client.host, start, end)
    used = sum(e.count for e in entries)
    kept = (
        "tables finished so far are loaded"
        if by_table
        else "nothing of this --full-refresh run was loaded"
    )
    return MonthlyCallBudget(settings.monthly_call_budget, used, end.date(), inner, kept)


@dataclasses.dataclass
class BudgetedSyncReport(SyncReport):
    """A ``SyncReport`` plus where the budget stopped the run (``None``: it did not)."""

    max_calls: int | None = None
    completed: list[str] = dataclasses.field(default_factory=list)
    not_synced: list[str] = dataclasses.field(default_factory=list)
    stopped: CallBudgetExceeded | None = None

    def summary(self) -> str:
        text = super().summary()
        if self.max_calls is not None:
            text += f" of --max-calls {self.max_calls:,}"
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


def run_with_budget(max_calls: int | None, **args: Unpack[SyncArgs]) -> BudgetedSyncReport:
    """Sync like ``run_sync`` but spend at most ``max_calls`` Caspio API calls (tokens included)
    and stay within ``monthly_call_budget`` if it is set.

    Returns a report whose ``stopped`` is set when a budget ran out; a failure of any other
    kind propagates as from ``run_sync``.
    """
    started = time.perf_counter()
    return budgeted_run(open_sync(**args), max_calls, started)


def budgeted_run(setup: SyncSetup, max_calls: int | None, started: float) -> BudgetedSyncReport:
    """``run_with_budget`` on an opened sync (``run_sync`` hands over when a monthly budget
    is set)."""
    settings, client, pipeline = setup.settings, setup.client, setup.pipeline
    inner = CallBudget(max_calls) if max_calls is not None else None
    client.budget = interrupts.budget(monthly_budget(setup, inner))
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
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    for ledger in ledger_sources(settings, client):  # no Caspio call: loaded even when stopped
        pipeline.run(ledger)
    record_run(pipeline, client, before, "ok" if stopped is None else "budget", None, completed)
    return BudgetedSyncReport(
        **report_fields(pipeline, client, before, started, rows),
        load_info=load_info,
        max_calls=max_calls,
        completed=completed,
        not_synced=[n for n in names if n not in completed],
        stopped=stopped,
    )
