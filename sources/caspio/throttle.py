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

With a ``SharedPace`` (the default when tokens are cached on disk), the pace, its slots, a
429's pause, the single prober and the learning are the account's, shared with every other
process on the machine (``shared_pace.py``): this client's threads count each successful call
in the account's file, hold while another process probes, and take the pace the account's
prober learned.
"""

import atexit
import contextlib
import logging
import threading
import time
import weakref

from .shared_pace import LEARN_MIN_CALLS, PACE_MARGIN, SharedPace

logger = logging.getLogger(__name__)

COUNT_EVERY_SECONDS = 0.5
"""How often this client adds its successful calls to the account's count (and when it holds
for another prober, or exits)."""


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
        self._account_prober: int | None = None
        """The thread of this client that probes for the whole account (shared file)."""
        self._uncounted = 0
        self._uncounted_since = self._uncounted_until = self._counted_at = 0.0
        if shared is not None:
            atexit.register(_count_at_exit, weakref.ref(self))

    @property
    def requests_per_second(self) -> float | None:
        """The pace in force (configured or learned), ``None`` when unpaced."""
        with self._cond:
            return 1.0 / self._interval if self._interval else None

    def before_call(self) -> float:
        """Blocks until this thread may send (pause over, the probe is its own, pace slot);
        returns the time it may send at, for ``succeeded``."""
        me = threading.get_ident()
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._paused_until > now:
                        self._cond.wait(self._paused_until - now)
                        continue
                    if self._account_prober == me:
                        self._prober = me  # the account's prober is its client's too
                    elif self._stalled_since is not None:
                        if self._prober is None:
                            self._prober = me
                        elif self._prober != me:
                            self._cond.wait(1.0)  # woken as soon as the probe resolves
                            continue
                    break
                wait, hold = 0.0, False
                if self._shared is not None and (self._interval or self._shared.in_use()):
                    booking = self._shared.book(self._interval, me)
                    wait, hold, self._interval = booking.wait, booking.hold, booking.interval
                    if booking.probe:
                        self._account_prober = me
                elif self._interval:
                    slot = max(self._next_slot, now)
                    self._next_slot = slot + self._interval
                    wait = slot - now
            if hold:
                self.count_calls()  # the prober's answer may decide on them
            if wait > 0:
                time.sleep(wait)
            if not hold:
                return time.monotonic()

    def count_calls(self) -> None:
        """Adds this client's successful calls not yet counted to the account's burst."""
        if self._shared is None:
            return
        with self._cond:
            calls, since, until = self._uncounted, self._uncounted_since, self._uncounted_until
            self._uncounted, self._counted_at = 0, time.monotonic()
        if calls:
            self._shared.count(calls, since, until)

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
            claim = self._prober == me
        self.count_calls()
        # only this client's own prober may become the account's: a prober of the account
        # that waits for another prober of its client would hold every process up
        if self._shared is not None and self._shared.publish(pause=pause, thread=me, claim=claim):
            with self._cond:
                self._account_prober = self._prober = me

    def succeeded(self, sent_at: float) -> None:
        """A call sent at ``sent_at`` got through: it counts toward the burst, or, sent after
        the stall began, it ends the stall (one sent before proves nothing)."""
        me = threading.get_ident()
        learned: float | None = None
        if self._shared is not None:
            with self._cond:
                wall_sent = time.time() - (time.monotonic() - sent_at)
                probed = self._account_prober == me
                if probed:
                    self._account_prober = None
                else:  # every process's calls count toward the account's burst
                    if not self._uncounted:
                        self._uncounted_since = wall_sent
                    self._uncounted += 1
                    self._uncounted_until = max(self._uncounted_until, wall_sent)
                due = probed or time.monotonic() - self._counted_at >= COUNT_EVERY_SECONDS
            if due:
                self.count_calls()
            if probed:
                learned = self._shared.probe_through(me, wall_sent)
        with self._cond:
            now = time.monotonic()
            if learned is not None:
                self._interval = max(self._interval, learned)
                logger.info(
                    "Caspio throttled this account: pacing its calls, of every process on this "
                    "machine, at %.2f calls/s from now on",
                    1.0 / learned,
                )
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
            learns = self._shared is None and self._refused_probes  # else the account learns
            if learns and self._burst_calls >= LEARN_MIN_CALLS and window > 0:
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
            self._stalled_since = None
            self._refused_probes = 0
            self._prober = None
            self._burst_start = now
            self._burst_calls = 1
            self._cond.notify_all()

    def released(self) -> None:
        """The calling thread is done with its request, however it ended: it probes no more."""
        me = threading.get_ident()
        with self._cond:
            if self._prober == me:
                self._prober = None
                self._cond.notify_all()
            account_prober = self._account_prober == me
            if account_prober:
                self._account_prober = None
        if account_prober and self._shared is not None:
            self._shared.release_probe(me)


def _count_at_exit(ref: "weakref.ref[Throttle]") -> None:
    throttle = ref()
    if throttle is not None:
        with contextlib.suppress(OSError):  # the cache directory is gone: nothing to share
            throttle.count_calls()


__all__ = ["Throttle"]
