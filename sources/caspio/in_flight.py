"""One budget of calls in flight per client, across tables, sized by AIMD.

Every HTTP exchange of a client (first pages sent from dlt's threads, page ranges from the
client's pool, ``/fields``, listings, tokens) holds one slot of this limiter while it is on the
wire, so the tables of a run share the budget and a later table's first call waits in the same
first-come, first-served queue as an earlier table's ranges instead of behind all of them.

How many slots (the *window*) follows the account, by additive increase, multiplicative
decrease, as TCP's congestion window does:

- it starts at ``INITIAL_IN_FLIGHT`` (or the cap, if lower);
- a call that succeeds, was sent while callers queued for a slot (latency, not our own work,
  bounds the sync) and whose latency is not rising adds ``1 / window``: one slot more per
  window of calls, up to the cap (``max_workers``);
- a 429, or latency clearly rising (the moving average of successful calls' latency above
  both ``RISE_FACTOR`` times its lowest value and that lowest plus ``RISE_MIN_SECONDS``),
  halves the window (never below 1), at most once per window of calls: only a call sent after
  the last decrease can cause the next one, or count toward growth. After a decrease the
  average and its lowest are learnt afresh, so a lasting change of latency (larger pages, a
  slower region) costs one halving, not the whole window.

The clock is a seam (``clock``) and ``try_acquire`` never blocks, so tests drive the rule by
hand; ``acquire`` blocks on a condition and is what the client uses.
"""

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Literal

INITIAL_IN_FLIGHT = 4
"""Where the window starts: what a fixed pool of four workers used to send."""
RISE_FACTOR = 2.0
RISE_MIN_SECONDS = 0.25
"""Latency counts as rising only this far above the lowest seen, so the jitter of a fast
local server (a few milliseconds doubling) never halves the window."""
SMOOTHING = 0.2
"""Weight of the newest latency in the moving average."""

Outcome = Literal["ok", "throttled", "failed"]


@dataclasses.dataclass(frozen=True)
class Slot:
    """One call's place in the budget: when it was sent, under which decrease epoch, and
    whether callers were queueing (the budget, not the caller, was the bottleneck)."""

    sent_at: float
    epoch: int
    saturated: bool


class InFlight:
    """The calls-in-flight budget of one client (thread-safe)."""

    def __init__(
        self,
        cap: int,
        initial: int = INITIAL_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        self.cap = cap
        self._clock = clock
        self._cond = threading.Condition()
        self._window = float(max(1, min(cap, initial)))
        self._in_flight = 0
        self._next_ticket = 0
        self._serving = 0
        self._epoch = 0
        self._refused = 0
        self._lowest: float | None = None
        self._average: float | None = None
        self.halvings = 0
        """Decreases so far (429s and rising latency), for reports and tests."""

    @property
    def limit(self) -> int:
        """The calls that may be in flight now."""
        with self._cond:
            return int(self._window)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def acquire(self) -> Slot:
        """Blocks until this caller's turn comes and a slot is free (first come, first served)."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            saturated = ticket != self._serving or self._in_flight >= int(self._window)
            while ticket != self._serving or self._in_flight >= int(self._window):
                self._cond.wait()
            return self._take(saturated)

    @property
    def queued(self) -> int:
        """Callers blocked in ``acquire`` now."""
        with self._cond:
            return self._next_ticket - self._serving

    def try_acquire(self) -> Slot | None:
        """A slot if one is free and nobody queues for it, else ``None`` (never blocks). A
        refusal counts as a caller waiting: the next slot taken is a saturated one."""
        with self._cond:
            if self._next_ticket != self._serving or self._in_flight >= int(self._window):
                self._refused += 1
                return None
            self._next_ticket += 1
            return self._take(False)

    def _take(self, saturated: bool) -> Slot:
        if self._refused:
            self._refused -= 1
            saturated = True
        self._serving += 1
        self._in_flight += 1
        self._cond.notify_all()  # the next ticket may go too, if the window allows
        return Slot(self._clock(), self._epoch, saturated)

    def release(self, slot: Slot, outcome: Outcome) -> None:
        """The call of ``slot`` ended: ``ok`` (a 2xx), ``throttled`` (a 429) or ``failed``
        (anything else, which says nothing about the account's capacity)."""
        with self._cond:
            self._in_flight -= 1
            if outcome == "throttled":
                self._decrease(slot)
            elif outcome == "ok" and slot.epoch == self._epoch:
                if self._rising(max(0.0, self._clock() - slot.sent_at)):
                    self._decrease(slot)
                elif slot.saturated:
                    self._window = min(float(self.cap), self._window + 1.0 / self._window)
            self._cond.notify_all()

    def _rising(self, latency: float) -> bool:
        """Records one latency; whether the average now stands clearly above its lowest."""
        if self._average is None:
            self._average = latency
        else:
            self._average += SMOOTHING * (latency - self._average)
        self._lowest = min(self._lowest or self._average, self._average)
        threshold = max(self._lowest * RISE_FACTOR, self._lowest + RISE_MIN_SECONDS)
        return self._average > threshold

    def _decrease(self, slot: Slot) -> None:
        if slot.epoch != self._epoch:
            return  # sent before the last decrease: that one already answered for it
        self._window = max(1.0, self._window / 2)
        self._epoch += 1
        self._average = self._lowest = None  # measured at the old window: learnt afresh
        self.halvings += 1


def outcome_of(status: int) -> Outcome:
    """An HTTP status as the budget reads it (0: no answer at all)."""
    return "ok" if 200 <= status < 300 else "throttled" if status == 429 else "failed"


__all__ = ["InFlight", "Slot", "Outcome", "outcome_of", "INITIAL_IN_FLIGHT"]
