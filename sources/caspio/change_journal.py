"""The webhook change journal: Caspio's change events, kept on disk until a run has applied them.

What: a JSON-lines file (``webhook_journal`` setting) that ``caspio-sync listen`` appends one
event to per delivery, and that ``caspio-sync run`` reads (the deletes of the tables it syncs)
and trims once the load that applied them has committed. Each line holds ``messageId``,
``eventDate``, ``eventType``, ``objectName``, ``receivedAt`` and ``keys``: for each record only
its key values (``PK_ID`` and the table's configured primary key fields), never other values
and never the webhook's secret.

Why this shape: an event is written, flushed and fsync'd before the listener answers 2xx, so
nothing Caspio thinks delivered is lost; a torn last line (a crash mid-write) is ignored and cut
off. One ``flock`` on a lock file beside the journal serialises appends and trims across
processes; trims rewrite the file atomically (``os.replace``) and every append reopens it, so a
listener never writes into a replaced file. Trimmed ``messageId``s move to an ``.applied`` file
(kept ``APPLIED_KEEP_DAYS``), so a late redelivery after a trim is still recognised as seen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

DEFAULT_JOURNAL = ".caspio/webhook_journal.jsonl"
"""Relative to the current directory, so ``listen`` and ``run`` started in the same directory
share it without a flag."""
APPLIED_KEEP_DAYS = 30
"""How long a trimmed messageId is remembered (Caspio's redelivery window is undocumented)."""
EVENT_TYPES = ("table.recordInsert", "table.recordUpdate", "table.recordDelete")
JOURNAL_FIELDS = ("messageId", "eventDate", "eventType", "objectName", "receivedAt", "keys")


def journal_path(setting: str | os.PathLike[str] | None) -> Path:
    """The journal's absolute path: a relative setting means the current directory."""
    return Path(os.path.abspath(os.path.expanduser(str(setting or DEFAULT_JOURNAL))))


def _parse_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The complete events in `data`, and the length of its intact prefix (a torn or garbled
    tail, from a crash mid-append, is left out)."""
    events: list[dict[str, Any]] = []
    good = 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end]
        pos = end + 1
        if not line.strip():
            good = pos
            continue
        try:
            event = json.loads(line)
        except ValueError:
            break
        if not isinstance(event, dict) or not isinstance(event.get("messageId"), str):
            break
        events.append(event)
        good = pos
    return events, good


class ChangeJournal:
    """One journal file with its lock and its record of applied (trimmed) messageIds."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = journal_path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.applied_path = self.path.with_name(self.path.name + ".applied")

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The journal's exclusive lock (between listeners and runs, across processes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_unlocked(self, repair: bool = False) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        events, good = _parse_lines(data)
        if repair and good < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        return events

    def read(self, repair: bool = False) -> list[dict[str, Any]]:
        """Every complete event, in the order received; ``repair`` cuts a torn last line."""
        if not self.exists():
            return []
        with self.locked():
            return self._read_unlocked(repair)

    def applied_ids(self) -> set[str]:
        """messageIds already applied and trimmed (a redelivery of one is a no-op)."""
        with self.locked():
            return set(self._applied_unlocked())

    def _applied_unlocked(self) -> dict[str, str]:
        try:
            data = self.applied_path.read_bytes()
        except FileNotFoundError:
            return {}
        events, _ = _parse_lines(data)
        return {str(e["messageId"]): str(e.get("trimmedAt") or "") for e in events}

    def append(self, event: Mapping[str, Any]) -> None:
        """Write one event durably (append, flush, fsync) before the caller acknowledges it."""
        line = json.dumps({k: event[k] for k in JOURNAL_FIELDS}, separators=(",", ":")) + "\n"
        with self.locked():
            self._read_tail_repair()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.path.parent)

    def _read_tail_repair(self) -> None:
        """A torn last line (a crash mid-append) is cut before the next append joins it."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
        self._read_unlocked(repair=True)

    def trim(self, message_ids: Iterable[str]) -> int:
        """Remove the events with these messageIds (applied by a committed load) and remember
        the ids; returns how many events were removed."""
        gone = set(message_ids)
        if not gone or not self.exists():
            return 0
        with self.locked():
            events = self._read_unlocked()
            keep = [e for e in events if e["messageId"] not in gone]
            removed = [e["messageId"] for e in events if e["messageId"] in gone]
            if not removed:
                return 0
            now = dt.datetime.now(dt.timezone.utc)
            applied = self._applied_unlocked()
            applied.update({m: now.isoformat() for m in removed})
            oldest = (now - dt.timedelta(days=APPLIED_KEEP_DAYS)).isoformat()
            applied = {m: t for m, t in applied.items() if t >= oldest}
            self._replace(
                self.applied_path, [{"messageId": m, "trimmedAt": t} for m, t in applied.items()]
            )
            self._replace(self.path, keep)
            return len(removed)

    @staticmethod
    def _replace(path: Path, rows: list[dict[str, Any]]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.writelines((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in rows)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """A new file's directory entry survives a crash only once its directory is synced."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def journal_event(payload: Mapping[str, Any], key_fields: Iterable[str]) -> dict[str, Any]:
    """The journal line of one delivery: its identity and, per record, only the key values
    (``PK_ID`` and ``key_fields``, matched case-insensitively); the secret never."""
    wanted = {"pk_id", *(k.lower() for k in key_fields)}
    keys = []
    for record in payload.get("data") or []:
        if isinstance(record, Mapping):
            keys.append({k: v for k, v in record.items() if k.lower() in wanted})
    return {
        "messageId": str(payload["messageId"]),
        "eventDate": str(payload.get("eventDate") or ""),
        "eventType": str(payload["eventType"]),
        "objectName": str(payload["objectName"]),
        "receivedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "keys": keys,
    }


__all__ = [
    "APPLIED_KEEP_DAYS",
    "DEFAULT_JOURNAL",
    "EVENT_TYPES",
    "ChangeJournal",
    "journal_event",
    "journal_path",
]
