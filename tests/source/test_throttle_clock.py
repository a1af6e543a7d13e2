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
from sources.caspio.throttle import LEARN_MIN_CALLS, Throttle

LIMIT, WINDOW = 10, 1.0
BACKOFF_BASE, BACKOFF_MAX = 0.2, 1.0
SEEDS = range(40)
MARGIN = 0.95
"""The documented pace: 5% under the rate the window allowed (not read from the module)."""


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
    """A sliding window of ``LIMIT`` calls per ``WINDOW`` s; refused calls count too."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: deque[float] = deque()

    def call(self) -> bool:
        now = self.clock.now
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        ok = len(self.sent) < LIMIT
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


def drive(throttle: Throttle, clock: VirtualClock, calls: int, seed: int) -> list[bool]:
    """``calls`` successful calls through the throttle, as the client makes them; returns
    every answer in order (False = a 429)."""
    rng = random.Random(seed)
    server = Window(clock)
    answers: list[bool] = []
    done = 0
    while done < calls:
        attempt = 0
        while True:
            sent_at = throttle.before_call()
            clock.sleep(0.01)  # the call itself takes 10 ms
            ok = server.call()
            answers.append(ok)
            if ok:
                throttle.succeeded(sent_at)
                throttle.released()
                done += 1
                break
            attempt += 1
            delay = rng.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1)))
            throttle.throttled(delay)
            clock.sleep(delay)
    return answers


@pytest.mark.parametrize("seed", SEEDS)
def test_a_window_limit_is_learned_then_never_hit_again(clock: VirtualClock, seed: int) -> None:
    throttle = Throttle()
    answers = drive(throttle, clock, 200, seed)
    pace = throttle.requests_per_second
    assert pace is not None, "a window limit hit twice must teach a pace"
    assert pace < LIMIT / WINDOW, pace
    first_refusal = answers.index(False)
    assert first_refusal == LIMIT, "the first refusal is the call that overflows the window"
    learned_at = max(i for i, ok in enumerate(answers) if not ok)
    assert all(answers[learned_at + 1 :]), "the learned pace hit the window again"
    # a stall whose first probe gets through teaches nothing (it may be a one-off refusal),
    # so the window can be hit once more; never a third time
    stalls = sum(1 for a, b in zip([True, *answers], answers, strict=False) if a and not b)
    assert stalls <= 2, (stalls, answers[: learned_at + 1])
    assert answers.count(False) <= 2 * 4, answers.count(False)


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


def test_too_few_calls_before_a_stall_teach_no_pace(clock: VirtualClock) -> None:
    throttle = Throttle()
    for _ in range(LEARN_MIN_CALLS - 1):
        throttle.succeeded(throttle.before_call())
    for _ in range(2):  # refused, and the probe refused again
        throttle.before_call()
        throttle.throttled(0.5)
        clock.sleep(0.5)
    throttle.succeeded(throttle.before_call())
    assert throttle.requests_per_second is None


def test_the_learned_pace_is_the_burst_rate_less_the_margin(clock: VirtualClock) -> None:
    """20 calls 0.1 s apart (a 2 s burst), a stall: refused, probe refused, probe through
    1 s later. The window reads as 20 calls over 3 s, paced at 95% of that."""
    throttle = Throttle()
    start = clock.now
    for _ in range(20):
        throttle.succeeded(throttle.before_call())
        clock.sleep(0.1)
    for _ in range(2):
        throttle.before_call()
        throttle.throttled(0.5)
        clock.sleep(0.5)
    sent_at = throttle.before_call()
    throttle.succeeded(sent_at)
    expected = 20 / (sent_at - start) * MARGIN
    pace: Any = throttle.requests_per_second
    assert pace == pytest.approx(expected, rel=1e-9)
