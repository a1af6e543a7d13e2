"""`caspio-sync usage` as a scheduler runs it (a child process): the calls of an interrupted
run are in the ledger, `--json` has what a monitor reads, the quota's overage is priced from
the settings, and several accounts in one ledger must be told apart."""

from __future__ import annotations

import datetime as dt
import json
import signal
import uuid
from pathlib import Path
from typing import Any

from sources.caspio import LEDGER_FILE, LedgerEntry, append_entries
from tests.reliability.harness import ITEMS

from .conftest import base_env, cli, emulator_env, signal_when

SLOW_READ = {"SOURCES__CASPIO__PAGE_SIZE": "50", "SOURCES__CASPIO__MAX_WORKERS": "1"}


def _ledger(work: Path) -> Path:
    return work / "dlt_data" / "pipelines" / "caspio" / LEDGER_FILE


def _usage_json(env: dict[str, str], work: Path, *args: str) -> dict[str, Any]:
    done = cli(["usage", "--json", *args], env, work)
    assert done.code == 0, done.err[-3000:]
    return dict(json.loads(done.out))


def test_an_interrupted_run_records_what_it_spent(
    caspio_emulator_factory: Any, account: dict[str, Any], work: Path
) -> None:
    emulator = caspio_emulator_factory(dataset=account, latency_ms=100)
    env = emulator_env(emulator, work, **SLOW_READ)
    target = ["--duckdb-file", str(work / "sync.duckdb")]
    argv = ["run", *target, "--progress-interval", "0.2"]
    done = signal_when(
        argv, env, work, lambda err: f"{ITEMS}: " in err and " of " in err, [signal.SIGINT]
    )
    assert done.code == 130, done.err[-3000:]
    spent = emulator.calls
    assert spent > 3
    usage = _usage_json(env, work, *target)
    assert usage["calls_this_period"] == spent
    assert usage["by_command"] == {"run": spent}
    assert emulator.client_secret not in _ledger(work).read_text()


def _entries(host: str, counts: list[int], table: str | None = "Orders") -> list[LedgerEntry]:
    now = dt.datetime.now(dt.timezone.utc)
    return [LedgerEntry(uuid.uuid4().hex, now, host, "run", table, "records", n) for n in counts]


def test_json_quota_and_overage_from_the_settings(work: Path) -> None:
    host = "c1abc123.caspio.com"
    append_entries(_ledger(work), _entries(host, [400, 200]) + _entries(host, [50], None))
    env = base_env(
        work,
        SOURCES__CASPIO__QUOTA_CALLS_PER_MONTH="100",
        SOURCES__CASPIO__OVERAGE_PRICE_PER_CALL="0.002",
    )
    usage = _usage_json(env, work)
    assert usage["account"] == host
    assert usage["calls_this_period"] == 650
    assert usage["quota"] == 100
    assert usage["projected"] >= 650
    over = usage["projected"] - 100
    assert usage["projected_overage_calls"] == over
    assert usage["projected_overage_cost"] == round(over * 0.002, 2)
    assert usage["top_tables"] == [
        {"table": "Orders", "calls": 600},
        {"table": "(token, listing)", "calls": 50},
    ]
    text = cli(["usage"], env, work)
    assert text.code == 0 and "calls this period: 650" in text.out
    assert f"resets {usage['resets_on']}" in text.out


def test_unknown_quota_is_said_and_no_ledger_is_zero(work: Path) -> None:
    env = base_env(work)
    usage = _usage_json(env, work)
    assert usage["calls_this_period"] == 0 and usage["projected"] == 0
    assert usage["quota"] is None and usage["projected_overage_cost"] is None
    done = cli(["usage"], env, work)
    assert "quota: unknown (set quota_calls_per_month" in done.out


def test_several_accounts_need_one_named(work: Path) -> None:
    append_entries(_ledger(work), _entries("a1.caspio.com", [5]) + _entries("b2.caspio.com", [7]))
    env = base_env(work)
    done = cli(["usage", "--json"], env, work)
    assert done.code == 1
    assert len(done.err_lines) == 1 and "a1.caspio.com, b2.caspio.com" in done.err
    assert _usage_json(env, work, "--account", "b2.caspio.com")["calls_this_period"] == 7
