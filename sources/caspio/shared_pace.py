"""One pace per account across the processes of one machine: the Airflow DAG's parallel table
tasks, or a cron job that overlaps the last one, must not together exceed what the account
allows.

A small JSON file beside the token cache (named like the token file, ``.pace`` suffix) holds
the account's schedule, read and written under an exclusive ``flock`` (held for a read and a
write, never across a call). Wall-clock time, since monotonic clocks differ per process:

- the next free call slot and the pace in force (configured, or learned after a 429), so the
  processes' calls together keep the pace;
- the account's successful calls since the last stall (``burst_start``, ``burst_calls``), in a
  second file (``.calls``) so that counting leaves the pace file untouched: every process adds
  its own at least twice a second and when it exits (it may be gone by the time another one
  meets the 429), so a pace learned from a 429 is the account's rate, not one process's share;
- a stall: after a 429 every process waits out the pause, then exactly one caller (the
  *prober*: a process and thread, leased for a while and taken over if its process dies)
  sends the next call; the others hold until its answer is recorded. Through: the stall ends
  and, if the window had refused a probe, the calls of the burst over its length become the
  account's pace, 5% under. Refused: a longer pause, the same prober.

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

STALE_SLOT_SECONDS = 600.0
"""A slot booked further ahead than this is a leftover of a clock jump: start afresh."""
LEARNED_PACE_SECONDS = 900.0
"""How long a pace learned from a 429 binds the other processes: three of the 300 s windows
one account showed, then the account is tried at full speed again. A file untouched this long
holds no stall or call count worth keeping either."""
LEARN_MIN_CALLS = 10
"""Fewer calls than this before a stall say too little about the account's rate."""
PACE_MARGIN = 0.95
PROBE_LEASE_SECONDS = 120.0
"""How long a prober may take (more than a call's timeouts) before another caller probes."""
HOLD_POLL_SECONDS = 0.1
"""How often a caller held by another's probe looks at the file again."""
STALL_KEYS = ("stall_since", "prober", "prober_pid", "prober_until", "refused")
BURST_KEYS = ("burst_start", "burst_calls", "burst_floor", "burst_last")
BURST_IDLE_SECONDS = 300.0
"""A pause between two of the account's calls this long (the longest window one account
showed) ends a burst: calls before it no longer fill the window."""


@dataclasses.dataclass(frozen=True)
class Booking:
    """A caller's turn: send after ``wait`` s at ``interval``; or, when ``hold``, ask again
    after ``wait`` (a pause, or another caller's probe); ``probe``: this caller probes."""

    wait: float
    interval: float
    hold: bool = False
    probe: bool = False


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
                for key in (*STALL_KEYS, *BURST_KEYS):  # a run long gone left them
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

    def count(self, calls: int, since: float, until: float) -> None:
        """``calls`` successful calls, sent from ``since`` to ``until`` (wall clock), toward
        the account's burst (one sent before the last stall ended counts from its end)."""
        with self._locked(self.calls_path) as state:
            last = state.get("burst_last")
            if last is not None and since - float(last) > BURST_IDLE_SECONDS:
                state.pop("burst_start", None)  # the account rested: a new burst
                state.pop("burst_calls", None)
            state["burst_last"] = max(until, float(last or 0.0))
            since = max(since, float(state.get("burst_floor") or 0.0))
            start = state.get("burst_start")
            state["burst_start"] = since if start is None else min(float(start), since)
            state["burst_calls"] = int(state.get("burst_calls") or 0) + calls

    def reserve(self, interval: float) -> tuple[float, float]:
        """``book`` for thread 0: ``(seconds to wait, interval in force)``."""
        booking = self.book(interval, 0)
        return booking.wait, booking.interval

    def book(self, interval: float, thread: int) -> Booking:
        """This call's turn. The interval is the larger of the caller's and one another
        process learned lately. While the account is stalled, the caller holds, unless the
        pause is over and nobody else probes: then it is the prober."""
        me = self._owner(thread)
        with self._locked() as state:
            now = time.time()
            if float(state.get("learned_until") or 0.0) > now:
                interval = max(interval, float(state.get("interval") or 0.0))
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
                return Booking(0.0, interval, probe=True)
            slot = max(now, paused)
            booked = float(state.get("next_slot") or 0.0)
            if interval and booked - now < STALE_SLOT_SECONDS:
                slot = max(slot, booked)
            if interval:
                state["next_slot"] = slot + interval
            return Booking(slot - now, interval)

    def publish(
        self,
        interval: float | None = None,
        pause: float | None = None,
        thread: int = 0,
        claim: bool = True,
    ) -> bool:
        """Share a pace (never faster than one already shared), or a 429 and its pause: the
        account stalls; the caller becomes its prober unless another is (or ``claim`` is
        false); a prober refused again keeps the role and counts a refused probe. Returns
        whether the caller probes."""
        with self._locked() as state:
            now = time.time()
            if interval:
                shared = float(state.get("interval") or 0.0)
                if float(state.get("learned_until") or 0.0) <= now:
                    shared = 0.0
                state["interval"] = max(interval, shared)
                state["learned_until"] = now + LEARNED_PACE_SECONDS
            if pause:
                until = max(now + pause, float(state.get("paused_until") or 0.0))
                state["paused_until"] = until
                me = self._owner(thread)
                if state.get("stall_since") is None:
                    state.update(stall_since=now, refused=0, prober=None)
                if state.get("prober") == me:
                    state["refused"] = int(state.get("refused") or 0) + 1
                elif state.get("prober") is None and claim:
                    state.update(prober=me, prober_pid=os.getpid())
                if state.get("prober") == me:
                    state["prober_until"] = until + PROBE_LEASE_SECONDS
                    return True
            return False

    def probe_through(self, thread: int, sent_at: float) -> float | None:
        """The prober's call sent at ``sent_at`` (wall clock) got through: the stall ends.
        Returns the pace learned from it (seconds between calls), ``None`` when it teaches
        none: the first probe went through (a one-off refusal) or the burst was too short."""
        with self._locked() as state:
            now = time.time()
            if state.get("prober") != self._owner(thread):
                return None  # the role was taken over meanwhile: its holder decides
            learned: float | None = None
            reopened = min(sent_at, now)  # errs on the slow side, as a refusal costs money
            with self._locked(self.calls_path) as burst:
                start, done = burst.get("burst_start"), int(burst.get("burst_calls") or 0)
                for key in BURST_KEYS:
                    burst.pop(key, None)
                burst["burst_floor"] = reopened  # calls sent before count from the reopening
            if state.get("refused") and start is not None and done >= LEARN_MIN_CALLS:
                window = reopened - float(start)
                if window > 0:
                    learned = 1.0 / (done / window * PACE_MARGIN)
                    shared = float(state.get("interval") or 0.0)
                    if float(state.get("learned_until") or 0.0) <= now:
                        shared = 0.0
                    state["interval"] = max(learned, shared)
                    state["learned_until"] = now + LEARNED_PACE_SECONDS
            for key in STALL_KEYS:
                state.pop(key, None)
            return learned

    def release_probe(self, thread: int) -> None:
        """The prober's call ended without an answer that resolves the stall (another error):
        the next caller probes."""
        with self._locked() as state:
            if state.get("prober") == self._owner(thread):
                state["prober"] = None


__all__ = ["Booking", "SharedPace", "LEARN_MIN_CALLS", "PACE_MARGIN"]
