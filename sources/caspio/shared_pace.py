"""One pace per account across the processes of one machine: the Airflow DAG's parallel table
tasks, or a cron job that overlaps the last one, must not together exceed what the account
allows.

A small JSON file beside the token cache (named like the token file, ``.pace`` suffix) holds
the account's schedule, read and written under an exclusive ``flock`` (held for a read and a
write, never across a call). Wall-clock time, since monotonic clocks differ per process:

- the next free call slot and the pace in force (configured, or learnt from the account's 429s
  by ``pace_estimate.py``), so the processes' calls together keep the pace;
- the account's answered calls, a count in a second file (``.calls``) so that counting leaves
  the pace file untouched: every process adds its own at least twice a second and when it
  exits, so a pace learnt from the 429s is the account's rate, not one process's share;
- a stall: after a 429 every process waits out the pause, then exactly one caller (the
  *prober*: a process and thread, leased for a while and taken over if its process dies)
  sends the next call; the others hold until its answer is recorded. Through: the stall ends;
  refused: a longer pause, the same prober.

Several machines do not share the file: each learns from its own 429s (see
docs/scheduling.md, "Several machines, one account").
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .pace_estimate import (
    EPISODE_KEYS,
    after_paced_call,
    call_sent,
    stall_began,
)

STALE_SLOT_SECONDS = 600.0
"""A slot booked further ahead than this is a leftover of a clock jump: start afresh."""
LEARNED_PACE_SECONDS = 900.0
"""How long a pace learnt from the 429s binds the processes after it was last learnt: three of
the 300 s windows one account showed, then the account is tried at full speed again. A file
untouched this long holds no stall worth keeping either."""
PROBE_LEASE_SECONDS = 120.0
"""How long a prober may take (more than a call's timeouts) before another caller probes."""
HOLD_POLL_SECONDS = 0.1
"""How often a caller held by another's probe looks at the file again."""
STALL_KEYS = ("stall_since", "prober", "prober_pid", "prober_until")


@dataclasses.dataclass(frozen=True)
class Booking:
    """A caller's turn: send after ``wait`` s at ``interval``; or, when ``hold``, ask again
    after ``wait`` (a pause, or another caller's probe); ``probe``: this caller probes."""

    wait: float
    interval: float
    hold: bool = False
    probe: bool = False


@dataclasses.dataclass(frozen=True)
class Published:
    """What a 429 made of the caller: the account's prober or not, and the pace (seconds
    between calls) the account learnt from it, if any."""

    probe: bool
    learned: float | None = None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedPace:
    """The pace file of one account, shared by every client and process that uses it.

    ``thread`` arguments name the calling thread (``threading.get_ident()``); with this
    object's own id they name a prober across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls_path = path.with_suffix(".calls")
        self._me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _owner(self, thread: int) -> str:
        return f"{self._me}-{thread}"

    @contextlib.contextmanager
    def _locked(self, path: Path | None = None) -> Iterator[dict[str, Any]]:
        """The JSON state of ``path`` (the pace file) under an exclusive lock; changes are
        written back. A process that holds both files' locks takes the pace file's first."""
        path = path or self.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 4096)
            try:
                state = json.loads(raw) if raw else {}
            except ValueError:  # a torn or foreign file: start afresh
                state = {}
            state = state if isinstance(state, dict) else {}
            before = dict(state)
            if time.time() - float(state.get("updated") or 0.0) > LEARNED_PACE_SECONDS:
                for key in (*STALL_KEYS, *EPISODE_KEYS):  # a run long gone left them
                    state.pop(key, None)
            yield state
            if state != before:
                state["updated"] = time.time()
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

    def count(self, calls: int) -> None:
        """``calls`` more answered calls of this account."""
        with self._locked(self.calls_path) as state:
            state["answered"] = int(state.get("answered") or 0) + calls

    def reserve(self, interval: float) -> tuple[float, float]:
        """``book`` for thread 0: ``(seconds to wait, interval in force)``."""
        booking = self.book(interval, 0)
        return booking.wait, booking.interval

    def book(self, interval: float, thread: int) -> Booking:
        """This call's turn. The interval is the larger of the caller's and the one learnt
        lately, which grows a little faster with every call it paces. While the account is
        stalled, the caller holds, unless the pause is over and nobody else probes: then it
        is the prober."""
        me = self._owner(thread)
        with self._locked() as state:
            now = time.time()
            learned = float(state.get("interval") or 0.0)
            if float(state.get("learned_until") or 0.0) > now and learned > interval:
                interval = learned
                state["interval"] = after_paced_call(state, learned)
            paused = float(state.get("paused_until") or 0.0)
            if state.get("stall_since") is not None:
                if paused > now:
                    return Booking(paused - now, interval, hold=True)
                prober = state.get("prober")
                if (
                    prober is not None
                    and prober != me
                    and float(state.get("prober_until") or 0.0) > now
                    and _alive(state.get("prober_pid"))
                ):
                    return Booking(HOLD_POLL_SECONDS, interval, hold=True)
                state.update(prober=me, prober_pid=os.getpid())
                state["prober_until"] = now + PROBE_LEASE_SECONDS
                call_sent(state, now, interval, stalled=True)
                return Booking(0.0, interval, probe=True)
            call_sent(state, now, interval)
            slot = max(now, paused)
            if interval:
                booked = float(state.get("next_slot") or 0.0)
                if booked - now >= STALE_SLOT_SECONDS:
                    booked = 0.0
                scheduled = max(booked, now, paused)
                state["next_slot"] = scheduled + interval
                slot = max(slot, scheduled)
            return Booking(slot - now, interval)

    def publish(self, pause: float, thread: int = 0, claim: bool = True) -> Published:
        """A 429 and its pause: the account stalls (the first 429 of a stall may teach the
        account's pace, ``pace_estimate.stall_began``); the caller becomes its prober unless
        another is (or ``claim`` is false); a prober refused again keeps the role."""
        with self._locked() as state:
            now = time.time()
            learned: float | None = None
            state["paused_until"] = max(now + pause, float(state.get("paused_until") or 0.0))
            me = self._owner(thread)
            if state.get("stall_since") is None:
                state.update(stall_since=now, prober=None)
                with self._locked(self.calls_path) as calls:
                    answered = int(calls.get("answered") or 0)
                learned = stall_began(state, now, answered)
                if learned is not None:
                    state["interval"] = learned
                    state["learned_until"] = now + LEARNED_PACE_SECONDS
            if state.get("prober") is None and claim:
                state.update(prober=me, prober_pid=os.getpid())
            probe = state.get("prober") == me
            if probe:
                state["prober_until"] = state["paused_until"] + PROBE_LEASE_SECONDS
            return Published(probe, learned)

    def end_stall(self, thread: int) -> None:
        """The prober's call got through: the stall ends, every caller may send again."""
        with self._locked() as state:
            if state.get("prober") == self._owner(thread):
                for key in STALL_KEYS:
                    state.pop(key, None)

    def release_probe(self, thread: int) -> None:
        """The prober's call ended without an answer that resolves the stall (another error):
        the next caller probes."""
        with self._locked() as state:
            if state.get("prober") == self._owner(thread):
                state["prober"] = None


__all__ = ["Booking", "Published", "SharedPace"]
