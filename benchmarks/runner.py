"""Run the cases: contenders interleaved run by run, the emulator's log read around each run.

Interleaving (repeat 1 of every contender, then repeat 2, ...) spreads the noise of a shared
machine over all contenders instead of letting one contender meet a quiet minute and another a
busy one. Each contender run gets a fresh working dir unless the case is incremental.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .apilog import count_calls
from .caspio_api import CaspioApi
from .contenders.common import duckdb_table_rows
from .emulator_proc import EmulatorProcess
from .measure import contender_env, run_module
from .scenarios import Case
from .window import fill_window

MUTATION_SETTLE_SECONDS = 3.0
"""Pause after updating rows through the API, before the measured run (see ``_mutate``)."""

MEDIAN_KEYS = (
    "wall_s",
    "cpu_s",
    "user_s",
    "sys_s",
    "peak_rss_mb",
    "rows_per_s",
    "api_calls",
    "token_calls",
    "record_calls",
    "fields_calls",
    "listing_calls",
    "other_calls",
    "status_429",
    "errors",
    "emulator_cpu_s",
    "rows",
    "request_rate",
)


@dataclass
class RunSettings:
    repeat: int
    work_dir: Path
    timeout_floor_s: float = 180.0
    timeout_per_page_s: float = 2.0
    keep_work: bool = False
    progress: Callable[[str], None] = print


@dataclass
class CaseResult:
    case: Case
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mutations: list[int] = field(default_factory=list)

    def median(self, contender: str) -> dict[str, float]:
        ok = [r for r in self.runs.get(contender, []) if r["ok"]]
        if not ok:
            return {}
        return {k: float(statistics.median(r[k] for r in ok)) for k in MEDIAN_KEYS if k in ok[0]}

    def failed(self, contender: str) -> int:
        return sum(1 for r in self.runs.get(contender, []) if not r["ok"])

    def as_dict(self) -> dict[str, Any]:
        medians = {c: self.median(c) for c in self.case.contenders}
        base = medians.get("connector", {}).get("wall_s")
        ratios = {
            c: (m["wall_s"] / base if base and m.get("wall_s") else None)
            for c, m in medians.items()
        }
        return {
            "id": self.case.id,
            "scenario": self.case.scenario,
            "title": self.case.title,
            "kind": self.case.kind,
            "tables": list(self.case.tables),
            "rows_per_table": self.case.rows_per_table,
            "expected_rows": self.case.expected_rows,
            "latency_ms": self.case.latency_ms,
            "rate_limit": list(self.case.rate_limit) if self.case.rate_limit else None,
            "changed_rows": self.case.changed_rows,
            "rows_updated_via_api": self.mutations,
            "notes": list(self.case.notes),
            "contenders": list(self.case.contenders),
            "median": medians,
            "wall_ratio_to_connector": ratios,
            "failed_runs": {c: self.failed(c) for c in self.case.contenders},
            "failure_reasons": {
                c: [failure_reason(r) for r in self.runs.get(c, []) if not r["ok"]]
                for c in self.case.contenders
            },
            "runs": self.runs,
        }


class Runner:
    """Runs cases against one emulator process; restarts it if it dies between runs."""

    def __init__(self, emulator: EmulatorProcess, settings: RunSettings) -> None:
        self.emulator = emulator
        self.settings = settings
        self.token_dir = settings.work_dir / "token_cache"
        self._cursor: dict[str, str | None] = {}

    def api(self) -> CaspioApi:
        emu = self.emulator
        return CaspioApi(emu.base_url, emu.client_id, emu.client_secret)

    def cursor_field(self, table: str) -> str | None:
        if table not in self._cursor:
            self._cursor[table] = self.api().cursor_field(table)
        return self._cursor[table]

    def run_case(self, case: Case) -> CaseResult:
        result = CaseResult(case, runs={c: [] for c in case.contenders})
        repeat = case.repeat or self.settings.repeat
        given_up: set[str] = set()
        # each case is another account's life: a pace learnt from the last case's window must
        # not bind this one (the token itself is kept: the token call is not what is measured)
        for learnt in (*self.token_dir.glob("*.pace"), *self.token_dir.glob("*.calls")):
            learnt.unlink()
        self.emulator.configure(
            latency_ms=0 if case.full_window else case.latency_ms,
            rate_limit=list(case.rate_limit) if case.rate_limit else None,
        )
        try:
            if case.full_window and case.rate_limit:
                self.cursor_field(case.tables[0])  # the harness's own calls, before the window
                limit, period = case.rate_limit
                fill_window(self.api(), limit, period, self.settings.progress)
                self.emulator.configure(latency_ms=case.latency_ms)  # keeps the window
            for round_no in range(1, repeat + 1):
                if case.changed_rows:
                    result.mutations += self._mutate(case, round_no)
                for contender in case.contenders:
                    if contender in given_up or (round_no > 1 and contender in case.once):
                        continue
                    run = self.run_one(case, contender, round_no)
                    if run.get("killed_for_memory") or run.get("timed_out"):
                        given_up.add(contender)  # its next runs would only burn the clock
                    result.runs[contender].append(run)
                    self.settings.progress(_progress_line(case, contender, round_no, run))
        finally:
            self.emulator.configure(latency_ms=0, rate_limit=None)
        return result

    def _mutate(self, case: Case, round_no: int) -> list[int]:
        api = self.api()
        updated = [
            api.update_share(table, case.rows_per_table, case.changed_rows, round_no)
            for table in case.tables
        ]
        # The connector's mark stays SERVER_CLOCK_MARGIN (2 s) behind the server's clock at
        # sync start, so rows stamped in those 2 s are read again by the next run (the margin
        # that keeps a row committed late from being skipped). A scheduled pipeline starts
        # minutes after the writes it reads; back-to-back benchmark runs must wait the margin
        # out, or the "no change" run after a changed one re-reads the changes.
        time.sleep(MUTATION_SETTLE_SECONDS)
        return updated

    def run_dir(self, case: Case, contender: str, round_no: int) -> Path:
        if case.state_key:
            return self.settings.work_dir / "state" / case.state_key / contender
        slug = case.id.replace(" ", "_").replace("@", "_at_")
        return self.settings.work_dir / "runs" / slug / f"{contender}-{round_no}"

    def run_one(self, case: Case, contender: str, round_no: int) -> dict[str, Any]:
        emu = self.emulator
        out = self.run_dir(case, contender, round_no)
        if case.kind != "incremental" and out.exists():
            shutil.rmtree(out)
        argv = [
            "--base-url",
            emu.base_url,
            "--client-id",
            emu.client_id,
            "--client-secret",
            emu.client_secret,
            "--rows",
            str(case.rows_per_table),
            "--out",
            str(out),
        ]
        for table in case.tables:
            argv += ["--table", table]
        cursor = self.cursor_field(case.tables[0])
        if cursor:
            argv += ["--cursor-field", cursor]
        pages = len(case.tables) * math.ceil(case.rows_per_table / 1000)
        timeout = self.settings.timeout_floor_s + pages * (
            self.settings.timeout_per_page_s + case.latency_ms / 1000.0
        )
        env = contender_env(
            {
                "SOURCES__CASPIO__TOKEN_CACHE_DIR": str(self.token_dir),
                "DLT_DATA_DIR": str(out / "dlt_data"),
                "XDG_CACHE_HOME": str(out / "cache"),
            }
        )
        # a fresh throttle window per run: the previous contender's calls must not count
        # against this one (configure() clears the emulator's rate window); a full-window
        # case keeps it, so each run meets the window the run before left
        if not case.full_window:
            emu.configure(rate_limit=list(case.rate_limit) if case.rate_limit else None)
        emu.reset_log()
        emu_cpu_before = _cpu_seconds(emu.pid())
        proc = run_module(
            f"benchmarks.contenders.{contender}",
            argv,
            cwd=out,
            env=env,
            timeout_s=timeout,
            log_file=out.parent / f"{out.name}.log",
        )
        emu_cpu = _cpu_seconds(emu.pid()) - emu_cpu_before
        calls = count_calls(emu.log())
        run = proc.as_dict()
        run.update(calls.as_dict())
        rows = int(proc.result.get("rows", 0))
        run["rows"] = rows
        run["dest_rows"] = destination_rows(proc.result)
        run["emulator_cpu_s"] = emu_cpu
        run["rows_per_s"] = rows / proc.wall_s if proc.wall_s > 0 else 0.0
        run["request_rate"] = calls.api_calls / proc.wall_s if proc.wall_s > 0 else 0.0
        run["rows_ok"] = rows_ok(case, rows, run["dest_rows"])
        run["ok"] = bool(run["ok"]) and run["rows_ok"]
        run["round"] = round_no
        run["finished_at"] = time.time()
        if not self.settings.keep_work and case.kind == "full":
            shutil.rmtree(out, ignore_errors=True)
        return run


def destination_rows(result: dict[str, Any]) -> int | None:
    """Rows in the contender's DuckDB file, counted after it exited (None: it writes none)."""
    db_file = result.get("db_file")
    if not db_file or not Path(db_file).exists():
        return None
    return sum(duckdb_table_rows(Path(db_file), result.get("dataset")).values())


def rows_ok(case: Case, rows: int, dest_rows: Any) -> bool:
    """Full runs load every row; incremental runs at least the changed ones (a lag window or a
    closed cursor range may re-read a few more), and the destination must hold the whole table
    once, without duplicates."""
    complete = dest_rows is None or int(dest_rows) == case.total_rows
    if case.kind == "incremental":
        return rows >= case.expected_rows and complete
    return rows == case.expected_rows and complete


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system + times.children_user + times.children_system)


def failure_reason(run: dict[str, Any]) -> str:
    if run.get("killed_for_memory"):
        return "killed past the RSS cap"
    if run.get("timed_out"):
        return "timed out"
    if run["returncode"] != 0:
        return f"exit code {run['returncode']}"
    if not run.get("rows_ok", True):
        return f"{run['rows']} rows loaded, {run.get('dest_rows')} in the destination"
    return "no result line"


def _progress_line(case: Case, contender: str, round_no: int, run: dict[str, Any]) -> str:
    status = "ok" if run["ok"] else f"FAILED: {failure_reason(run)}"
    return (
        f"[{time.strftime('%H:%M:%S')}] {case.id:<22} {contender:<17} #{round_no} "
        f"wall {run['wall_s']:7.2f}s cpu {run['cpu_s']:7.2f}s rss {run['peak_rss_mb']:7.1f}MB "
        f"calls {run['api_calls']:5d} 429s {run['status_429']:3d} {status}"
    )
