"""One pace per account across the processes of one machine: the Airflow DAG's parallel table
tasks, or a cron job that overlaps the last one, must not together exceed what the account
allows.

A small JSON file beside the token cache (named like the token file, ``.pace`` suffix) holds
the account's schedule: the next free call slot, the pace in force (configured or learned
after a 429) and a pause every process honours after a 429. A process takes its slot under an
exclusive ``flock`` (held for a read and a write, never across a call), so the processes'
calls together keep the pace. Wall-clock time, since monotonic clocks differ per process.
Several machines do not share the file: give each worker its share of the account's rate.
"""

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STALE_SLOT_SECONDS = 600.0
"""A slot booked further ahead than this is a leftover of a clock jump: start afresh."""
LEARNED_PACE_SECONDS = 900.0
"""How long a pace learned from a 429 binds the other processes: three of the 300 s windows
one account showed, then the account is tried at full speed again."""


class SharedPace:
    """The pace file of one account, shared by every client and process that uses it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 4096)
            try:
                state = json.loads(raw) if raw else {}
            except ValueError:  # a torn or foreign file: start afresh
                state = {}
            state = state if isinstance(state, dict) else {}
            before = dict(state)
            yield state
            if state != before:
                data = json.dumps(state).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
        finally:
            os.close(fd)  # closing releases the lock

    def in_use(self) -> bool:
        """Whether any process paced or paused this account lately (one ``stat``, no lock):
        an unpaced client only takes slots from the file while it is."""
        try:
            changed = self.path.stat().st_mtime
        except OSError:
            return False
        return time.time() - changed < LEARNED_PACE_SECONDS

    def reserve(self, interval: float) -> tuple[float, float]:
        """Book this call's slot: returns ``(seconds to wait, interval in force)``. The
        interval is the larger of this process's and one another process learned lately."""
        with self._locked() as state:
            now = time.time()
            if float(state.get("learned_until") or 0.0) > now:
                interval = max(interval, float(state.get("interval") or 0.0))
            slot = max(now, float(state.get("paused_until") or 0.0))
            booked = float(state.get("next_slot") or 0.0)
            if interval and booked - now < STALE_SLOT_SECONDS:
                slot = max(slot, booked)
            if interval:
                state["next_slot"] = slot + interval
            return slot - now, interval

    def publish(self, interval: float | None = None, pause: float | None = None) -> None:
        """Share a learned pace (never faster than one already shared) or a 429's pause."""
        with self._locked() as state:
            if interval:
                now = time.time()
                shared = float(state.get("interval") or 0.0)
                if float(state.get("learned_until") or 0.0) <= now:
                    shared = 0.0
                state["interval"] = max(interval, shared)
                state["learned_until"] = now + LEARNED_PACE_SECONDS
            if pause:
                until = time.time() + pause
                state["paused_until"] = max(until, float(state.get("paused_until") or 0.0))
