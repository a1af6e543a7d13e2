"""When the client's threads may call Caspio: an optional fixed pace, and what a 429 teaches.

Caspio documents neither its throttle nor a ``Retry-After`` (one account showed 2,000 calls
per 300 s), and every call it refuses is still billed. Workers that each retry on their own
spend a 429 per worker per backoff step while a window is full, and once it reopens the same
burst runs into it again. So after a 429:

- every thread of the client waits, and a single thread probes (with the caller's backoff)
  until a call succeeds;
- if a probe was refused too (a window limit, not a one-off refusal), the rate the account
  allowed, successful calls from the start of the burst to the end of the stall, becomes the
  pace of the client for the rest of its life, 5% under, so the window is not hit again.

With a ``SharedPace`` (the default when tokens are cached on disk), the pace, its slots and a
429's pause are the account's, shared with every other process on the machine.
"""

import logging
import threading
import time

from .shared_pace import SharedPace

logger = logging.getLogger(__name__)

LEARN_MIN_CALLS = 10
"""Fewer calls than this before a stall say too little about the account's rate."""
PACE_MARGIN = 0.95


class Throttle:
    """Shared by all threads of one client."""

    def __init__(
        self, requests_per_second: float | None = None, shared: SharedPace | None = None
    ) -> None:
        self._cond = threading.Condition()
        self._shared = shared
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._stalled_since: float | None = None
        self._refused_probes = 0
        self._prober: int | None = None
        self._burst_start: float | None = None
        self._burst_calls = 0

    @property
    def requests_per_second(self) -> float | None:
        """The pace in force (configured or learned), ``None`` when unpaced."""
        with self._cond:
            return 1.0 / self._interval if self._interval else None

    def before_call(self) -> float:
        """Blocks until this thread may send (pause over, the probe is its own, pace slot);
        returns the time it may send at, for ``succeeded``."""
        me = threading.get_ident()
        with self._cond:
            while True:
                now = time.monotonic()
                if self._paused_until > now:
                    self._cond.wait(self._paused_until - now)
                    continue
                if self._stalled_since is not None:
                    if self._prober is None:
                        self._prober = me
                    elif self._prober != me:
                        self._cond.wait(1.0)  # woken as soon as the probe resolves
                        continue
                break
            wait = 0.0
            if self._shared is not None and (self._interval or self._shared.in_use()):
                wait, self._interval = self._shared.reserve(self._interval)
            elif self._interval:
                slot = max(self._next_slot, now)
                self._next_slot = slot + self._interval
                wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return time.monotonic()

    def throttled(self, pause: float) -> None:
        """A 429: every thread waits ``pause``; the thread that was told probes next."""
        me = threading.get_ident()
        with self._cond:
            now = time.monotonic()
            if self._stalled_since is None:
                self._stalled_since = now
            if self._prober is None:
                self._prober = me
            elif self._prober == me:
                # the thread that was refused first, refused again after its pause
                self._refused_probes += 1
            self._paused_until = max(self._paused_until, now + pause)
        if self._shared is not None:
            self._shared.publish(pause=pause)

    def succeeded(self, sent_at: float) -> None:
        """A call sent at ``sent_at`` got through: it counts toward the burst, or, sent after
        the stall began, it ends the stall (one sent before proves nothing)."""
        with self._cond:
            now = time.monotonic()
            if self._burst_start is None:
                self._burst_start = sent_at
            if self._stalled_since is None or sent_at < self._stalled_since:
                self._burst_calls += 1
                return
            # the window reopened at the latest when this call was sent: assuming it reopened
            # then errs on the slow side (a later refusal costs money, a slower pace does not)
            reopened = sent_at
            stalled = reopened - self._stalled_since
            window = reopened - self._burst_start
            if self._refused_probes and self._burst_calls >= LEARN_MIN_CALLS and window > 0:
                allowed = self._burst_calls / window
                self._interval = 1.0 / (allowed * PACE_MARGIN)
                logger.info(
                    "Caspio throttled this client for %.1f s after %d calls in %.1f s: pacing "
                    "at %.2f calls/s from now on",
                    stalled,
                    self._burst_calls,
                    window - stalled,
                    allowed * PACE_MARGIN,
                )
                if self._shared is not None:
                    self._shared.publish(interval=self._interval)
            self._stalled_since = None
            self._refused_probes = 0
            self._prober = None
            self._burst_start = now
            self._burst_calls = 1
            self._cond.notify_all()

    def released(self) -> None:
        """The calling thread is done with its request, however it ended: it probes no more."""
        with self._cond:
            if self._prober == threading.get_ident():
                self._prober = None
                self._cond.notify_all()


__all__ = ["Throttle"]
