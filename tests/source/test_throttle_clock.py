"""The throttle on an injected clock with seeded jitter: no wall-clock bounds, no flakes.

``sources/caspio/throttle.py`` reads ``time.monotonic``/``time.sleep`` and waits on a
``threading.Condition``; the tests swap that module's ``time`` and ``threading`` for a virtual
clock (waiting advances it), then drive the throttle as the client does: ``before_call``, then
``succeeded`` or, on a 429, ``throttled(delay)`` with the client's full-jitter backoff drawn
from a seeded ``random.Random``. A server with a sliding window (``LIMIT`` calls per
``WINDOW`` s, no Retry-After, as Caspio) answers on the same clock.
"""

from __future__ import annotations

import random
import threading
import types
from collections import deque
from typing import Any

import pytest

import sources.caspio.throttle as throttle_module
from sources.caspio.pace_estimate import LEARN_MIN_CALLS
from sources.caspio.throttle import Throttle

LIMIT, WINDOW = 100, 15.0
"""The account's window: a slot frees every 0.15 s once it is full, as 2,000 per 300 s."""
BACKOFF_BASE, BACKOFF_MAX = 0.5, 8.0
"""The client's defaults."""
SEEDS = range(20)
MARGIN = 0.98
"""The documented pace: 2% under the rate read between two 429s (not read from the module)."""


class VirtualClock:
    """Monotonic time that only moves when someone sleeps or waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class VirtualCondition:
    """A ``threading.Condition`` for one thread: ``wait(t)`` lets ``t`` virtual seconds pass."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def __enter__(self) -> VirtualCondition:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.sleep(timeout or 0.0)
        return True

    def notify_all(self) -> None:
        return None


class Window:
    """A sliding window of ``LIMIT`` calls per ``WINDOW`` s. ``refusals_count``: whether a
    refused call takes a slot too (Caspio does not say; the emulator's does not). ``full``:
    the window starts full, evenly, as an account already at its limit."""

    def __init__(self, clock: VirtualClock, refusals_count: bool, full: bool) -> None:
        self.clock = clock
        self.refusals_count = refusals_count
        step = WINDOW / LIMIT
        self.sent: deque[float] = deque(
            clock.now - WINDOW + (i + 1) * step for i in range(LIMIT if full else 0)
        )

    def call(self) -> bool:
        now = self.clock.now
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        ok = len(self.sent) < LIMIT
        if ok or self.refusals_count:
            self.sent.append(now)
        return ok


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    virtual = VirtualClock()
    fake_time = types.SimpleNamespace(monotonic=virtual.monotonic, sleep=virtual.sleep)
    fake_threading = types.SimpleNamespace(
        Condition=lambda: VirtualCondition(virtual), get_ident=threading.get_ident
    )
    monkeypatch.setattr(throttle_module, "time", fake_time)
    monkeypatch.setattr(throttle_module, "threading", fake_threading)
    return virtual


def drive(
    throttle: Throttle, clock: VirtualClock, calls: int, seed: int, server: Window
) -> list[bool]:
    """``calls`` successful calls through the throttle, as the client makes them (one at a
    time, 10 ms each); returns every answer in order (False = a 429)."""
    rng = random.Random(seed)
    answers: list[bool] = []
    done = 0
    while done < calls:
        attempt = 0
        while True:
            sent_at = throttle.before_call()
            clock.sleep(0.01)
            ok = server.call()
            answers.append(ok)
            if ok:
                throttle.succeeded(sent_at)
                throttle.released()
                done += 1
                break
            attempt += 1
            step = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
            delay = rng.uniform(step / 2 if attempt > 1 else 0, step)  # retries.Backoff
            throttle.throttled(delay)
            clock.sleep(delay)
    return answers


@pytest.mark.parametrize("seed", SEEDS)
def test_a_full_window_is_paced_near_its_rate_with_few_refusals(
    clock: VirtualClock, seed: int
) -> None:
    """Issue 17's target, on a window that starts full: at least 90% of its rate, under 2% of
    calls refused (the emulator's kind of window: refused calls take no slot)."""
    start = clock.now
    answers = drive(Throttle(), clock, 650, seed, Window(clock, False, full=True))
    rate = answers.count(True) / (clock.now - start) / (LIMIT / WINDOW)
    refused = answers.count(False) / len(answers)
    assert rate >= 0.9, rate
    assert refused < 0.02, (answers.count(False), len(answers))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_window_that_counts_refusals_is_never_flooded(clock: VirtualClock, seed: int) -> None:
    """Where refused calls take slots too, refusals beget refusals: the pace keeps them rare,
    at the price of rate (it is read from answered calls only, and recovers 1% per 100)."""
    start = clock.now
    answers = drive(Throttle(), clock, 650, seed, Window(clock, True, full=True))
    rate = answers.count(True) / (clock.now - start) / (LIMIT / WINDOW)
    assert answers.count(False) / len(answers) < 0.03, answers.count(False)
    assert rate >= 0.5, rate


def test_a_window_that_starts_empty_is_first_filled_then_paced(clock: VirtualClock) -> None:
    """The first 429 only says the window is full; the second, with the calls between, gives
    the rate: under it by at most the prober's overshoot (a burst's slots all free at once,
    up to one backoff step before the probe finds them), never over it."""
    throttle = Throttle()
    answers = drive(throttle, clock, 400, 7, Window(clock, False, full=False))
    assert answers.index(False) == LIMIT, "the first refusal is the call that overflows it"
    pace = throttle.requests_per_second
    assert pace is not None and 0.8 * LIMIT / WINDOW < pace <= LIMIT / WINDOW, pace
    stall_starts = [i for i, ok in enumerate(answers) if not ok and answers[i - 1]]
    resumed = answers.index(True, stall_starts[1])
    paced = answers[resumed:]  # once the second stall is over, the pace holds the window
    assert paced.count(False) < 0.02 * len(paced), (paced.count(False), len(paced))


def test_a_learned_pace_spaces_calls_by_its_interval(clock: VirtualClock) -> None:
    throttle = Throttle(requests_per_second=4.0)
    sent = [throttle.before_call() for _ in range(5)]
    gaps = [round(b - a, 9) for a, b in zip(sent, sent[1:], strict=False)]
    assert gaps == [0.25] * 4


def test_a_one_off_429_teaches_no_pace(clock: VirtualClock) -> None:
    throttle = Throttle()
    for _ in range(LEARN_MIN_CALLS + 2):
        throttle.succeeded(throttle.before_call())
    throttle.throttled(0.3)
    clock.sleep(0.3)
    throttle.succeeded(throttle.before_call())  # the probe got through at once
    assert throttle.requests_per_second is None


def test_too_few_calls_between_two_429s_teach_no_pace(clock: VirtualClock) -> None:
    throttle = Throttle()
    stall(throttle, clock, refused=1)
    for _ in range(LEARN_MIN_CALLS - 2):  # with the probe: one short
        throttle.succeeded(throttle.before_call())
    throttle.before_call()
    throttle.throttled(0.5)
    assert throttle.requests_per_second is None


def stall(throttle: Throttle, clock: VirtualClock, refused: int) -> None:
    """A 429, ``refused`` more refused probes, then a probe through, 0.5 s apart."""
    for _ in range(refused + 1):
        throttle.before_call()
        throttle.throttled(0.5)
        clock.sleep(0.5)
    throttle.succeeded(throttle.before_call())


def test_the_learned_pace_is_the_rate_between_two_429s_less_the_margin(
    clock: VirtualClock,
) -> None:
    """A 429, then 20 calls 0.1 s apart after the probe, then a 429 again: the account let 21
    calls through (the probe included) between the two 429s, and the pace is 2% under that;
    the refused probes, and the wait before the window filled, change nothing."""
    throttle = Throttle()
    for _ in range(30):  # before the window filled: not counted
        throttle.succeeded(throttle.before_call())
        clock.sleep(1.0)
    first = clock.now
    stall(throttle, clock, refused=2)
    for _ in range(20):
        throttle.succeeded(throttle.before_call())
        clock.sleep(0.1)
    span = clock.now - first
    throttle.before_call()
    throttle.throttled(0.5)
    pace: Any = throttle.requests_per_second
    assert pace == pytest.approx(21 / span * MARGIN, rel=1e-9)


def test_the_pace_creeps_up_until_the_window_answers_again(clock: VirtualClock) -> None:
    """A pace read too low would never meet another 429 to correct it: every 100 paced calls
    it grows by 1%."""
    throttle = Throttle()
    stall(throttle, clock, refused=0)
    for _ in range(LEARN_MIN_CALLS):
        throttle.succeeded(throttle.before_call())
    throttle.before_call()
    throttle.throttled(0.1)
    clock.sleep(0.1)
    throttle.succeeded(throttle.before_call())
    learned: Any = throttle.requests_per_second
    for _ in range(200):
        throttle.succeeded(throttle.before_call())
    assert throttle.requests_per_second == pytest.approx(learned * 1.01**2, rel=1e-6)


def test_a_429_after_a_quiet_quarter_hour_reads_the_rate_afresh(clock: VirtualClock) -> None:
    """The calls of an episode long over say nothing about the account's load now."""
    throttle = Throttle()
    stall(throttle, clock, refused=0)
    for _ in range(LEARN_MIN_CALLS * 3):
        throttle.succeeded(throttle.before_call())
    clock.sleep(901.0)
    throttle.before_call()
    throttle.throttled(0.1)
    assert throttle.requests_per_second is None


def learned(clock: VirtualClock) -> Throttle:
    """A throttle that learnt a pace: a 429, 20 calls 0.1 s apart, a 429 again."""
    throttle = Throttle()
    stall(throttle, clock, refused=0)
    for _ in range(20):
        throttle.succeeded(throttle.before_call())
        clock.sleep(0.1)
    throttle.before_call()
    throttle.throttled(0.5)
    clock.sleep(0.5)
    throttle.succeeded(throttle.before_call())
    return throttle


def test_a_rest_saves_up_no_calls(clock: VirtualClock) -> None:
    """At a pace 2% under the window's rate, the window has almost no slots to spare: calls
    saved up during a rest and sent at once would be refused (S3b: 10 a run). After a rest the
    calls keep the pace from the first."""
    throttle = learned(clock)
    interval = 1.0 / (throttle.requests_per_second or 1.0)
    clock.sleep(60.0)
    sent = [throttle.before_call() for _ in range(30)]
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert all(gap == pytest.approx(interval, rel=0.02) for gap in gaps), gaps


def test_a_rest_does_not_count_as_the_accounts_rate(clock: VirtualClock) -> None:
    """The span since the last 429 reads the rate only while the account is busy: after a rest
    (the next scheduled run), the next 429 starts a new span and keeps the pace, instead of
    reading the rest as a window that allowed nothing (a run S3b's window allows in 33 s took
    108 s so)."""
    throttle = learned(clock)
    pace = throttle.requests_per_second
    clock.sleep(120.0)
    for _ in range(20):
        throttle.succeeded(throttle.before_call())
    throttle.before_call()
    throttle.throttled(0.5)
    assert throttle.requests_per_second == pytest.approx(pace, rel=0.02)
