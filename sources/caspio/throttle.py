"""When the client's threads may call Caspio: an optional fixed pace, and what a 429 teaches.

Caspio documents neither its throttle nor a ``Retry-After`` (one account showed 2,000 calls
per 300 s), and every call it refuses is still billed. Workers that each retry on their own
spend a 429 per worker per backoff step while a window is full, and once it reopens the same
burst runs into it again. So after a 429:

- every thread of the client waits, and a single thread probes (with the caller's backoff)
  until a call succeeds;
- the calls answered between the 429s that began stalls are the rate the account allows
  (``pace_estimate.py``): from the second such 429 on, that rate, 2% under, is the pace of
  the client, creeping up by 1% every 100 calls until the next 429 reads the rate again.

With a ``SharedPace`` (the default when tokens are cached on disk), the pace, its slots, a
429's pause, the single prober and the learning are the account's, shared with every other
process on the machine (``shared_pace.py``): this client's threads count each successful call
in the account's file, hold while another process probes, and take the pace the account
learnt.
"""

import atexit
import contextlib
import logging
import threading
import time
import weakref
from typing import Any

from .pace_estimate import after_paced_call, call_sent, stall_began
from .shared_pace import SharedPace

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
        self._configured = 1.0 / requests_per_second if requests_per_second else 0.0
        self._interval = self._configured
        """The pace in force: the configured one, or a slower one learnt (s between calls)."""
        self._learned = 0.0
        self._episode: dict[str, Any] = {}
        """This client's own record of the 429s, when no account file is shared."""
        self._answered = 0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._stalled_since: float | None = None
        self._prober: int | None = None
        self._account_prober: int | None = None
        """The thread of this client that probes for the whole account (shared file)."""
        self._uncounted = 0
        self._counted_at = 0.0
        if shared is not None:
            atexit.register(_count_at_exit, weakref.ref(self))

    @property
    def requests_per_second(self) -> float | None:
        """The pace in force (configured or learnt), ``None`` when unpaced."""
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
                    booking = self._shared.book(self._configured, me)
                    wait, hold, self._interval = booking.wait, booking.hold, booking.interval
                    if booking.probe:
                        self._account_prober = me
                elif self._shared is None:
                    stalled = self._stalled_since is not None
                    call_sent(self._episode, now, self._interval, stalled)  # a rest ends a span
                    if self._interval:
                        wait = self._paced_wait(now)
            if hold:
                self.count_calls()  # the prober's answer may decide on them
            if wait > 0:
                time.sleep(wait)
            if not hold:
                return time.monotonic()

    def _paced_wait(self, now: float) -> float:
        """This client's next slot at its pace (under ``_cond``), the seconds until it."""
        if self._learned > self._configured:
            self._learned = after_paced_call(self._episode, self._learned)
        scheduled = max(self._next_slot, now)
        self._next_slot = scheduled + self._interval
        self._interval = max(self._configured, self._learned)
        return max(0.0, scheduled - now)

    def count_calls(self) -> None:
        """Adds this client's successful calls not yet counted to the account's count."""
        if self._shared is None:
            return
        with self._cond:
            calls, self._uncounted, self._counted_at = self._uncounted, 0, time.monotonic()
        if calls:
            self._shared.count(calls)

    def throttled(self, pause: float) -> None:
        """A 429: every thread waits ``pause``; the thread that was told probes next. The
        first 429 of a stall may teach the pace (``pace_estimate.stall_began``)."""
        me = threading.get_ident()
        learned: float | None = None
        with self._cond:
            now = time.monotonic()
            if self._stalled_since is None:
                self._stalled_since = now
                if self._shared is None:
                    learned = stall_began(self._episode, now, self._answered)
                    if learned is not None:
                        self._learned = learned
                        self._interval = max(self._configured, learned)
            if self._prober is None:
                self._prober = me
            self._paused_until = max(self._paused_until, now + pause)
            claim = self._prober == me
        self.count_calls()
        # only this client's own prober may become the account's: a prober of the account
        # that waits for another prober of its client would hold every process up
        if self._shared is not None:
            published = self._shared.publish(pause=pause, thread=me, claim=claim)
            learned = published.learned
            if published.probe:
                with self._cond:
                    self._account_prober = self._prober = me
        if learned is not None:
            logger.info(
                "Caspio throttled this account: pacing its calls%s at %.2f calls/s from now on",
                ", of every process on this machine," if self._shared is not None else "",
                1.0 / learned,
            )

    def succeeded(self, sent_at: float) -> None:
        """A call sent at ``sent_at`` got through: it counts toward the account's answered
        calls, or, sent after the stall began, it ends the stall (one sent before proves
        nothing)."""
        me = threading.get_ident()
        with self._cond:
            self._answered += 1
            probed = self._account_prober == me
            if probed:
                self._account_prober = None
            self._uncounted += 1
            due = time.monotonic() - self._counted_at >= COUNT_EVERY_SECONDS
        if self._shared is not None and (due or probed):
            self.count_calls()
            if probed:
                self._shared.end_stall(me)
        with self._cond:
            if self._stalled_since is None or sent_at < self._stalled_since:
                return
            self._stalled_since = None
            self._prober = None
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
