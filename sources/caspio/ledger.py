"""The call ledger: an append-only record of the Caspio API calls spent, by account, command,
table and kind of call; what ``caspio-sync usage`` and the monthly budget count.

Caspio bills an account for every call of every process that uses it, and a run's report
forgets its calls when the run ends. A ``CallLedger`` observes the client's ``CaspioStats`` (so
no call path can skip it: token calls, retries and failed calls are counted where they are
sent), adds the calls up in memory by (command, table, kind) and appends one JSON line per group
to a file next to the pipeline's state: at the latest ``FLUSH_SECONDS`` after a call, when a
command ends (``flush_call_ledgers``) and at interpreter exit. Each append holds an exclusive
``flock`` and is fsync'd, so parallel processes never interleave or lose a line. An entry names
the account's host, never a credential. ``ledger_source`` copies the entries into the
destination (merged on their ids) so a fresh machine still knows the month.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import dlt
from dlt.common.configuration.container import Container
from dlt.common.pipeline import PipelineContext, get_dlt_pipelines_dir
from dlt.extract.source import DltSource

from .client import CaspioClient
from .stats import CallKind

logger = logging.getLogger(__name__)

LEDGER_FILE = "caspio_call_ledger.jsonl"
"""The ledger's name in the pipeline's working directory."""
LEDGER_TABLE = "_caspio_call_ledger"
"""The destination table holding a copy of the ledger, in the synced dataset."""
LEDGER_SOURCE = "caspio_call_ledger"
"""The dlt source (and schema) of that table: apart from ``caspio``'s, so its state and
tables are never mistaken for a Caspio object's."""
DEFAULT_PIPELINE = "caspio"
FLUSH_SECONDS = 2.0
"""Calls are written at the latest this long after they were sent."""
RELOAD_OVERLAP = dt.timedelta(days=1)
"""Entries this much older than the newest one loaded are offered again (merged on ``id``),
for an entry another process flushed late."""
DEFAULT_COMMAND = "python"

_command = DEFAULT_COMMAND
_ledgers: weakref.WeakSet[CallLedger] = weakref.WeakSet()
_ledgers_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """``count`` calls of one kind, by one command, on one table (``None``: token, listing
    and other account-wide calls), last of them sent at ``time`` (UTC)."""

    id: str
    time: dt.datetime
    host: str
    command: str
    table: str | None
    kind: str
    count: int

    def to_json(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["time"] = self.time.astimezone(dt.timezone.utc).isoformat()
        return row

    @classmethod
    def from_json(cls, row: Any) -> LedgerEntry | None:
        """The entry, or ``None`` for a line that is not one (a torn write, a foreign line)."""
        try:
            when = row["time"]
            if isinstance(when, str):
                when = dt.datetime.fromisoformat(when)
            if not isinstance(when, dt.datetime):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            table = row.get("table")
            return cls(
                id=str(row["id"]),
                time=when.astimezone(dt.timezone.utc),
                host=str(row["host"]),
                command=str(row["command"]),
                table=None if table is None else str(table),
                kind=str(row["kind"]),
                count=int(row["count"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def set_ledger_command(name: str) -> None:
    """Label the calls this process sends from now on (``run``, ``check``...; default
    ``python``: the source used from code)."""
    global _command
    _command = name


@contextlib.contextmanager
def ledger_command(name: str) -> Iterator[None]:
    """Label the calls of a block, then flush them and restore the previous label."""
    previous = _command
    set_ledger_command(name)
    try:
        yield
    finally:
        flush_call_ledgers()
        set_ledger_command(previous)


class CallLedger:
    """The ledger of one client: called by ``CaspioStats`` for every call it counts."""

    def __init__(self, path: Path, host: str) -> None:
        self.path = path
        self.host = host
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: Counter[tuple[str, str | None, str]] = Counter()
        self._last = dt.datetime.now(dt.timezone.utc)
        self._timer: threading.Timer | None = None
        with _ledgers_lock:
            _ledgers.add(self)

    def __repr__(self) -> str:
        return f"CallLedger({str(self.path)!r}, host={self.host!r})"

    def __call__(self, call: CallKind, obj: str | None) -> None:
        with self._lock:
            self._pending[(_command, obj, call)] += 1
            self._last = dt.datetime.now(dt.timezone.utc)
            if self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Append what was counted since the last flush; on a write error keep it for the
        next flush (a warning, never a failed run: the data is not at stake)."""
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, Counter()
                when = self._last
                timer, self._timer = self._timer, None
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
            if not pending:
                return
            entries = [
                LedgerEntry(uuid.uuid4().hex, when, self.host, command, table, kind, count)
                for (command, table, kind), count in sorted(pending.items(), key=str)
            ]
            try:
                append_entries(self.path, entries)
            except OSError as exc:
                with self._lock:
                    self._pending.update(pending)
                logger.warning("could not write the call ledger %s: %s", self.path, exc)


def append_entries(path: Path, entries: Iterable[LedgerEntry]) -> None:
    """Append whole lines under an exclusive lock, flushed to disk before the lock is let go;
    a line torn by a crash is closed first so that it spoils no other line."""
    data = "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_entries(path: Path, since: dt.datetime | None = None) -> list[LedgerEntry]:
    """Every entry of a ledger file (none if it does not exist), or those sent at ``since`` or
    later; lines that are not entries are skipped.

    Why ``since`` seeks: the file only grows, and each sync (its copy into the destination,
    its monthly budget) would otherwise parse the whole history again, a cost that grew every
    month (measured in docs/benchmarks-analysis.md). Lines are appended in time order but for a
    flush a few seconds late, so a binary search finds where entries from
    ``since - LINE_ORDER_SLACK`` on begin, and only the rest of the file is read."""
    try:
        with path.open("rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            if since is not None:
                f.seek(_first_line_from(f, since - LINE_ORDER_SLACK))
            data = f.read()
    except FileNotFoundError:
        return []
    entries = [entry for line in data.splitlines() if (entry := _parse_line(line)) is not None]
    return entries if since is None else [e for e in entries if e.time >= since]


LINE_ORDER_SLACK = dt.timedelta(days=1)
"""How far out of time order a ledger line may sit (a flush is at most ``FLUSH_SECONDS`` late;
the slack also covers clocks a little apart on a shared ledger path)."""


def _parse_line(line: bytes) -> LedgerEntry | None:
    try:
        return LedgerEntry.from_json(json.loads(line))
    except ValueError:
        return None


def _first_line_from(f: BinaryIO, threshold: dt.datetime) -> int:
    """The offset of the first line sent at ``threshold`` or later (the file's size if none):
    the smallest offset whose next entry line is not older than ``threshold``, found by
    bisection over byte offsets."""
    low, high = 0, os.fstat(f.fileno()).st_size
    while low < high:
        middle = (low + high) // 2
        _, entry = _next_entry(f, middle)
        if entry is not None and entry.time < threshold:
            low = middle + 1
        else:
            high = middle
    return _next_entry(f, low)[0]


def _next_entry(f: BinaryIO, offset: int) -> tuple[int, LedgerEntry | None]:
    """The first entry line that starts at ``offset`` or after it, with its offset
    (``None`` at the end of the file)."""
    f.seek(max(offset - 1, 0))
    if offset > 0 and f.read(1) != b"\n":
        f.readline()  # ``offset`` is inside a line: the next one starts after it
    while True:
        start = f.tell()
        line = f.readline()
        if not line:
            return start, None
        entry = _parse_line(line)
        if entry is not None:
            return start, entry


def flush_call_ledgers() -> None:
    """Write every ledger's pending calls now (the end of a command, interpreter exit)."""
    with _ledgers_lock:
        ledgers = list(_ledgers)
    for ledger in ledgers:
        ledger.flush()


atexit.register(flush_call_ledgers)


def ledger_path(configured: str | None = None, pipeline_dir: str | None = None) -> Path:
    """Where the ledger lives: ``configured`` (``call_ledger_path``) if given, else in
    ``pipeline_dir``, else in the active dlt pipeline's working directory, else in the
    default pipeline's (``<pipelines dir>/caspio``)."""
    if configured:
        return Path(os.path.abspath(os.path.expanduser(configured)))
    if pipeline_dir is None:
        context = Container()[PipelineContext]
        if context.is_active():
            pipeline_dir = context.pipeline().working_dir
        else:
            pipeline_dir = os.path.join(get_dlt_pipelines_dir(), DEFAULT_PIPELINE)
    return Path(os.path.abspath(pipeline_dir)) / LEDGER_FILE


def call_ledger_of(client: CaspioClient) -> CallLedger | None:
    """The ledger observing ``client``'s calls, if any."""
    return next((o for o in client.stats.observers if isinstance(o, CallLedger)), None)


def attach_call_ledger(
    client: CaspioClient, configured: str | None = None, pipeline_dir: str | None = None
) -> CallLedger:
    """Record ``client``'s calls in the ledger at ``ledger_path(configured, pipeline_dir)``;
    a client that already has a ledger keeps it."""
    ledger = call_ledger_of(client)
    if ledger is None:
        ledger = CallLedger(ledger_path(configured, pipeline_dir), client.host)
        client.stats.add_observer(ledger)
    return ledger


LEDGER_COLUMNS: dict[str, Any] = {
    "id": {"data_type": "text", "nullable": False},
    "time": {"data_type": "timestamp", "nullable": False},
    "host": {"data_type": "text", "nullable": False},
    "command": {"data_type": "text", "nullable": False},
    "table": {"data_type": "text", "nullable": True},
    "kind": {"data_type": "text", "nullable": False},
    "count": {"data_type": "bigint", "nullable": False},
}


def ledger_source(path: Path) -> DltSource:
    """A dlt source of one resource: the ledger's entries not yet loaded into
    ``LEDGER_TABLE`` (merged on ``id``). It flushes every ledger of this process first. A
    refresh that drops the table also drops the resource's state, so everything is offered
    again."""

    @dlt.source(name=LEDGER_SOURCE, max_table_nesting=0)
    def call_ledger() -> Any:
        @dlt.resource(
            name=LEDGER_TABLE,
            write_disposition="merge",
            primary_key="id",
            columns=LEDGER_COLUMNS,
        )
        def entries() -> Iterator[list[dict[str, Any]]]:
            flush_call_ledgers()
            state = dlt.current.resource_state()
            loaded = state.get("loaded_through")
            since = dt.datetime.fromisoformat(loaded) - RELOAD_OVERLAP if loaded else None
            found = read_entries(path, since)
            if found:
                yield [e.to_json() for e in found]
                state["loaded_through"] = max(e.time for e in found).isoformat()

        return entries

    return call_ledger()
