"""Progress of a run, for a person at a terminal and for the log read the morning after.

Per table: rows and pages read against the total (Caspio counts the matching rows on the first
page), calls spent, rate and time left. Three ways to show it:

- ``live`` (stderr is a terminal): one line, rewritten in place, cleared before the report;
- ``log`` (cron, CI, Airflow): a line per table at most every ``interval`` seconds while it is
  read and one when it is done, plus a line when normalize and load start;
- ``quiet``: nothing (the final report and errors are printed by the command).

Numbers come from the client's own counters (``client.stats``: calls and rows per object) and
dlt's step callbacks (this is a dlt ``Collector``); nothing is measured twice. A rate is shown
only once a table has been read for ``MIN_RATE_SECONDS``: a rate over 0.00 s means nothing.
"""

from __future__ import annotations

import math
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from dlt.common.runtime.collector_base import Collector

from sources.caspio import CaspioClient

from . import interrupts

Mode = Literal["live", "log", "quiet"]
MIN_RATE_SECONDS = 1.0
DEFAULT_INTERVAL = 10.0
_TOTAL = re.compile(rb'"TotalCount"\s*:\s*(\d+)')


@dataclass
class TableProgress:
    """What is known of one table's read in this run."""

    name: str
    started: float
    total: int | None = None
    rows: int = 0
    calls: int = 0
    pages: int = 0
    done: bool = False
    ended: float | None = None
    logged: float = field(default=0.0)

    def seconds(self, now: float) -> float:
        return (self.ended or now) - self.started

    def rate(self, now: float) -> float | None:
        """Rows per second, or ``None`` while too short to mean anything."""
        elapsed = self.seconds(now)
        if elapsed < MIN_RATE_SECONDS or self.rows <= 0:
            return None
        return self.rows / elapsed

    def describe(self, now: float, page_size: int) -> str:
        """``orders: 120,000 of 300,000 rows (40%), page 120 of 300, 121 calls, ...``."""
        rate = self.rate(now)
        if self.done:
            if self.rows == 0:
                return f"{self.name}: done, no rows to read ({_plural(self.calls, 'call')})"
            text = (
                f"{self.name}: done, {_n(self.rows)} rows in {_plural(self.pages, 'page')}, "
                f"{_plural(self.calls, 'call')}"
            )
            if rate is not None:
                text += f", {_n(round(rate))} rows/s over {_duration(self.seconds(now))}"
            return text
        text = f"{self.name}: {_n(self.rows)}"
        if self.total is not None:
            pct = 100 * self.rows // self.total if self.total else 100
            pages = max(1, math.ceil(self.total / page_size))
            text += f" of {_n(self.total)} rows ({pct}%), page {_n(self.pages)} of {_n(pages)}"
        else:
            text += f" rows, {_n(self.pages)} pages"
        text += f", {_plural(self.calls, 'call')}"
        if rate is not None:
            text += f", {_n(round(rate))} rows/s"
            if self.total is not None and self.total > self.rows:
                text += f", ETA {_duration((self.total - self.rows) / rate)}"
        return text


def _n(value: int) -> str:
    return f"{value:,}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RunMonitor(Collector):
    """Shows a run's progress on ``stream``; a dlt collector (``dlt.pipeline(progress=...)``)
    that also watches a Caspio client (``watch``). ``close()`` it when the run ends (dlt uses
    the collector itself as the context manager of each step)."""

    def __init__(
        self, stream: TextIO, mode: Mode = "log", interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.stream = stream
        self.mode: Mode = mode
        self.interval = interval
        self.step = ""
        self.tables: dict[str, TableProgress] = {}
        self.totals: dict[str, int] = {}
        self.page_size = 1000
        self.resources: int | None = None
        self.counters: dict[str, tuple[int, int | None]] = {}
        self.stopping = False
        self._client: CaspioClient | None = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = 0
        self._step_failed = False

    # ---- life cycle ------------------------------------------------------------------------

    def watch(self, client: CaspioClient, page_size: int) -> None:
        """Follow ``client``'s calls and rows until ``close``; learn each table's row count from
        its first (counted) page."""
        self._client = client
        self.page_size = page_size
        original = client.get_records_body

        def counted(kind: Any, name: str, params: Any) -> Any:
            resp = original(kind, name, params)
            if "q.getPaginationInfo" in params and name not in self.totals:
                body = bytes(resp.data)
                match = _TOTAL.search(body, max(0, len(body) - 512)) or _TOTAL.search(body)
                if match:
                    self.totals[name] = int(match.group(1))
            return resp

        client.get_records_body = counted  # type: ignore[method-assign]
        interrupts.on_first_signal(self._on_signal)
        if self.mode != "quiet" and self._thread is None:
            self._thread = threading.Thread(
                target=self._tick_loop, name="caspio-progress", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the ticker and clear the live line, so the report starts on a clean line."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._refresh()
        self._clear()

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        """The end of a dlt step; a step that failed or was interrupted finished no table."""
        self._step_failed = exc_type is not None
        super().__exit__(exc_type, exc_val, exc_tb)

    # ---- dlt's Collector -------------------------------------------------------------------

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        with self._lock:
            done, old_total = self.counters.get(name, (0, None))
            if total is not None:
                old_total = total
            if inc_total is not None:
                old_total = (old_total or 0) + inc_total
            self.counters[name] = (done + inc, old_total)
            if name == "Resources" and total is not None:
                # the call ledger's own extract, after the tables', counts one resource
                self.resources = max(self.resources or 0, total)

    def _start(self, step: str) -> None:
        with self._lock:
            self.step = step.split()[0].lower() if step else ""
            self.counters = {}
        if self.mode == "log" and self.step in ("normalize", "load"):
            what = "normalizing" if self.step == "normalize" else "loading into the destination"
            self._print(f"caspio-sync: {what}")

    def _stop(self) -> None:
        if self.step == "extract" and not self._step_failed:
            self._refresh(final=True)

    # ---- rendering -------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        self.stopping = True

    def _tick_loop(self) -> None:
        tick = 0.5 if self.mode == "live" else min(1.0, self.interval)
        while not self._halt.wait(tick):
            self._refresh()

    def _refresh(self, final: bool = False) -> None:
        client = self._client
        if client is None or self.mode == "quiet":
            return
        now = time.monotonic()
        snapshot = client.stats.snapshot()
        finished: list[TableProgress] = []
        with self._lock:
            for name, counts in snapshot["objects"].items():
                if not counts.get("record_calls"):
                    continue
                table = self.tables.get(name)
                if table is None:
                    table = self.tables[name] = TableProgress(name, started=now, logged=now)
                if table.done:
                    continue
                table.rows, table.calls = counts["rows"], counts["calls"]
                table.pages = counts["record_calls"]
                table.total = self.totals.get(name, table.total)
                complete = table.total is not None and table.rows >= table.total
                if complete or (final and self.step == "extract"):
                    table.done, table.ended = True, now
                    finished.append(table)
            active = [t for t in self.tables.values() if not t.done]
        if self.mode == "log":
            for table in finished:
                self._print(f"caspio-sync: {table.describe(now, self.page_size)}")
            for table in active:
                if now - table.logged >= self.interval:
                    table.logged = now
                    self._print(f"caspio-sync: {table.describe(now, self.page_size)}")
        elif not final:
            self._live(now, active)

    def _live(self, now: float, active: list[TableProgress]) -> None:
        parts = [self.step or "starting"]
        if self.stopping:
            parts = ["stopping (Ctrl-C again to stop at once)"]
        elif self.step == "extract":
            done = sum(t.done for t in self.tables.values())
            parts[0] += f" {done}/{self.resources}" if self.resources else f" {done}"
            parts[0] += " tables done"
            parts += [t.describe(now, self.page_size) for t in active]
        else:
            for name, (count, total) in self.counters.items():
                if name in ("Files", "Jobs"):
                    parts.append(f"{name.lower()} {count}/{total}" if total else f"{count}")
        width = max(20, shutil.get_terminal_size().columns - 1)
        line = " | ".join(parts)
        line = line if len(line) <= width else line[: width - 1] + "…"
        self._write("\r" + line + "\x1b[K")
        self._shown = len(line)

    def _clear(self) -> None:
        if self.mode == "live" and self._shown:
            self._write("\r\x1b[K")
            self._shown = 0

    def _print(self, line: str) -> None:
        self._clear()
        self._write(line + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not fail the sync
            pass
