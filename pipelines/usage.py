"""`caspio-sync usage`: the Caspio API calls of the current quota period, where the period will
end at the recent rate, and what that costs; no Caspio API call.

The calls come from the call ledger (``sources/caspio/ledger.py``): the local file next to the
pipeline's state and its copy in the destination (``_caspio_call_ledger``), united and
deduplicated by entry id, so a fresh machine pointed at an old destination still knows the
month. A quota period starts at midnight (``quota_time_zone``) of ``quota_period_start_day``
(the last day of a shorter month) and ends where the next one starts. The monthly budget of
``run`` counts its calls the same way (``period_calls``).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.pipeline.pipeline import Pipeline

from sources.caspio import (
    LEDGER_FILE,
    LEDGER_TABLE,
    CaspioClient,
    CaspioConfigError,
    CaspioSourceConfiguration,
    LedgerEntry,
    flush_call_ledgers,
    ledger_path,
    read_entries,
    resolve_source_configuration,
)

RATE_WINDOW = dt.timedelta(days=7)
"""The projection extends the rate of the last seven days (or of the period so far, if
shorter) to the period's end."""
TOP_TABLES = 5
ACCOUNT_WIDE = "(token, listing)"
"""How calls tied to no table are shown."""


def quota_period(
    now: dt.datetime, start_day: int, zone: str = "UTC"
) -> tuple[dt.datetime, dt.datetime]:
    """The quota period holding ``now``: its first instant and the first of the next one."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)

    def start_of(year: int, month: int) -> dt.datetime:
        day = min(start_day, calendar.monthrange(year, month)[1])
        return dt.datetime(year, month, day, tzinfo=tz)

    def shifted(year: int, month: int, by: int) -> tuple[int, int]:
        index = year * 12 + month - 1 + by
        return index // 12, index % 12 + 1

    start = start_of(local.year, local.month)
    if local < start:
        start = start_of(*shifted(local.year, local.month, -1))
    return start, start_of(*shifted(start.year, start.month, 1))


def destination_entries(pipeline: Pipeline, since: dt.datetime) -> list[LedgerEntry]:
    """The entries of ``LEDGER_TABLE`` in the pipeline's dataset from ``since`` on (raises
    when the destination cannot answer, e.g. no such table yet)."""
    with pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(LEDGER_TABLE)
        rows = sql.execute_sql(
            f'SELECT id, time, host, command, "table", kind, count FROM {table} '
            f"WHERE time >= '{since.astimezone(dt.timezone.utc).isoformat()}'"
        )
    keys = ("id", "time", "host", "command", "table", "kind", "count")
    found = (LedgerEntry.from_json(dict(zip(keys, row, strict=True))) for row in rows or [])
    return [e for e in found if e is not None]


def merge_entries(*sources: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """The union of entry lists, each id once."""
    seen: dict[str, LedgerEntry] = {}
    for entries in sources:
        for entry in entries:
            seen.setdefault(entry.id, entry)
    return list(seen.values())


def period_calls(
    entries: Iterable[LedgerEntry], host: str | None, start: dt.datetime, end: dt.datetime
) -> list[LedgerEntry]:
    """The entries of one account (``None``: any) inside ``[start, end)``."""
    return [e for e in entries if (host is None or e.host == host) and start <= e.time < end]


@dataclasses.dataclass
class Usage:
    """What ``usage`` shows; ``as_json`` is its machine-readable form."""

    account: str | None
    period_start: dt.datetime
    period_end: dt.datetime
    now: dt.datetime
    calls_this_period: int
    projected: int
    rate_window_days: float
    quota: int | None
    overage_price_per_call: float | None
    monthly_call_budget: int | None
    top_tables: list[tuple[str, int]]
    by_command: dict[str, int]
    ledger: str
    notes: list[str]

    @property
    def projected_overage_calls(self) -> int | None:
        return None if self.quota is None else max(0, self.projected - self.quota)

    @property
    def projected_overage_cost(self) -> float | None:
        over = self.projected_overage_calls
        if over is None or self.overage_price_per_call is None:
            return None
        return round(over * self.overage_price_per_call, 2)

    def as_json(self) -> str:
        return json.dumps(
            {
                "account": self.account,
                "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(),
                "resets_on": self.period_end.date().isoformat(),
                "calls_this_period": self.calls_this_period,
                "projected": self.projected,
                "rate_window_days": self.rate_window_days,
                "quota": self.quota,
                "overage_price_per_call": self.overage_price_per_call,
                "projected_overage_calls": self.projected_overage_calls,
                "projected_overage_cost": self.projected_overage_cost,
                "monthly_call_budget": self.monthly_call_budget,
                "top_tables": [{"table": t, "calls": n} for t, n in self.top_tables],
                "by_command": self.by_command,
                "ledger": self.ledger,
                "notes": self.notes,
            },
            indent=1,
        )

    def summary(self) -> str:
        def unknown(key: str) -> str:
            return f"unknown (set {key} in [sources.caspio])"

        lines = [
            f"account {self.account or 'any'}: quota period {self.period_start.date()} to "
            f"{(self.period_end - dt.timedelta(days=1)).date()} (resets "
            f"{self.period_end.date()})",
            f"calls this period: {self.calls_this_period:,}",
            f"projected by the period's end: {self.projected:,} (at the rate of the last "
            f"{self.rate_window_days:g} days)",
            "quota: "
            + (unknown("quota_calls_per_month") if self.quota is None else f"{self.quota:,}"),
            "overage price per call: "
            + (
                unknown("overage_price_per_call")
                if self.overage_price_per_call is None
                else f"{self.overage_price_per_call:g}"
            ),
        ]
        over, cost = self.projected_overage_calls, self.projected_overage_cost
        if over is not None:
            price = "unknown" if cost is None else f"{cost:,.2f}"
            lines.append(f"projected overage: {over:,} calls, cost {price}")
        if self.monthly_call_budget is not None:
            lines.append(
                f"monthly call budget: {self.monthly_call_budget:,} "
                f"({max(0, self.monthly_call_budget - self.calls_this_period):,} left)"
            )
        if self.top_tables:
            lines.append("top tables by calls:")
            width = max(len(t) for t, _ in self.top_tables)
            lines += [f"  {t.ljust(width)}  {n:,}" for t, n in self.top_tables]
        lines += self.notes
        return "\n".join(lines)


def summarize(
    entries: list[LedgerEntry],
    settings: CaspioSourceConfiguration,
    host: str | None,
    now: dt.datetime,
    ledger: str,
    notes: list[str],
) -> Usage:
    """The usage of ``host``'s current period from ``entries`` (every source united)."""
    start, end = quota_period(now, settings.quota_period_start_day, settings.quota_time_zone)
    current = period_calls(entries, host, start, end)
    calls = sum(e.count for e in current)
    window = min(RATE_WINDOW, now - start)
    recent = sum(e.count for e in current if e.time >= now - window)
    seconds = window.total_seconds()
    projected = calls + (round(recent / seconds * (end - now).total_seconds()) if seconds else 0)
    tables: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    for e in current:
        tables[e.table or ACCOUNT_WIDE] += e.count
        commands[e.command] += e.count
    return Usage(
        account=host,
        period_start=start,
        period_end=end,
        now=now,
        calls_this_period=calls,
        projected=projected,
        rate_window_days=round(seconds / 86400, 2),
        quota=settings.quota_calls_per_month,
        overage_price_per_call=settings.overage_price_per_call,
        monthly_call_budget=settings.monthly_call_budget,
        top_tables=tables.most_common(TOP_TABLES),
        by_command=dict(sorted(commands.items())),
        ledger=ledger,
        notes=notes,
    )


def usage_settings(pipeline_name: str) -> CaspioSourceConfiguration:
    """``[sources.caspio]`` as every command reads it; credentials are optional here (a
    monitoring machine need not hold the secret)."""
    try:
        return resolve_source_configuration(pipeline_name)
    except ConfigFieldMissingException:
        from dlt.common.configuration.resolve import resolve_configuration

        settings = resolve_configuration(
            CaspioSourceConfiguration(),
            sections=("sources", "caspio", "caspio"),
            accept_partial=True,
        )
        settings.on_resolved()  # the checks a full resolution runs
        return settings


def account_host(settings: CaspioSourceConfiguration) -> str | None:
    """The configured account's host, or ``None`` when credentials are not configured."""
    credentials = settings.credentials
    if credentials is None or not credentials.is_resolved():
        return None
    with CaspioClient(credentials, token_cache=False) as client:  # no call: only its host
        return client.host


def pick_account(
    entries: list[LedgerEntry], configured: str | None, given: str | None
) -> str | None:
    """The account to report: ``--account``, else the configured one, else the ledger's only
    one; several accounts and none named is an error naming them."""
    if given or configured:
        return given or configured
    hosts = sorted({e.host for e in entries})
    if len(hosts) > 1:
        raise CaspioConfigError(
            f"the call ledger holds several Caspio accounts ({', '.join(hosts)}): name one "
            "with --account HOST, or configure its credentials"
        )
    return hosts[0] if hosts else None


def local_entries(
    settings: CaspioSourceConfiguration, folder: Path
) -> tuple[Path, list[LedgerEntry]]:
    flush_call_ledgers()  # this process's own calls, when called from code
    path = ledger_path(settings.call_ledger_path, str(folder))
    return path, read_entries(path)


def run_usage(
    destination: str = "duckdb",
    dataset_name: str | None = None,
    pipeline_name: str | None = None,
    duckdb_file: str | None = None,
    pipelines_dir: str | None = None,
    account: str | None = None,
    now: dt.datetime | None = None,
) -> Usage:
    """The usage of the quota period holding ``now`` (default: this instant)."""
    from .setup import DEFAULT_DATASET_NAME, DEFAULT_PIPELINE_NAME, build_pipeline, duckdb_path

    name = pipeline_name or DEFAULT_PIPELINE_NAME
    now = now or dt.datetime.now(dt.timezone.utc)
    settings = usage_settings(name)
    path, local = local_entries(settings, Path(pipelines_dir or get_dlt_pipelines_dir()) / name)
    notes: list[str] = []
    remote: list[LedgerEntry] = []
    if settings.call_ledger_in_destination:
        start, _ = quota_period(now, settings.quota_period_start_day, settings.quota_time_zone)
        location = duckdb_path(duckdb_file, name) if destination == "duckdb" else None
        if location is not None and not Path(location).exists():
            notes.append(f"destination file {location} does not exist: local ledger only")
        else:
            pipeline = build_pipeline(
                destination, dataset_name or DEFAULT_DATASET_NAME, name, duckdb_file, pipelines_dir
            )
            remote, note = read_destination(pipeline, start)
            notes += [note] if note else []
    entries = merge_entries(local, remote)
    host = pick_account(entries, account_host(settings), account)
    return summarize(entries, settings, host, now, str(path), notes)


def read_destination(
    pipeline: Pipeline, since: dt.datetime
) -> tuple[list[LedgerEntry], str | None]:
    """``destination_entries``, or none and a note saying why the destination did not answer."""
    try:
        return destination_entries(pipeline, since), None
    except Exception as exc:  # noqa: BLE001 - usage shows what it can
        from .errors import describe_error

        text = describe_error(exc, pipeline.destination.destination_name)
        return [], f"destination copy of the ledger unavailable ({text}): local ledger only"


__all__ = [
    "LEDGER_FILE",
    "Usage",
    "merge_entries",
    "period_calls",
    "quota_period",
    "read_destination",
    "run_usage",
    "summarize",
]
