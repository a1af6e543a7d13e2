"""The rate a throttled account allows, read from its 429s, and the pace that follows it.

Caspio documents no limit (one account showed 2,000 calls per 300 s). A 429 says the window was
full at that moment, so the calls the account answered between two 429s that began stalls are
what its window let through in that time: saturation to saturation, whatever the window's kind
(sliding, where slots free one by one, or fixed, where a new window opens at once), and whatever
other users of the account spend. Counting from anywhere else misleads: from a burst's first
call, the time before the window filled counts as if the window had allowed nothing; up to the
end of a stall, the slots that freed while every caller paused count as refused.

The estimate spans the whole *episode* (every stall since the account's first 429 that did not
follow a quiet ``EPISODE_SECONDS``, and no rest of ``IDLE_SECONDS`` between calls), so each
stall makes it longer and better. The pace is the estimate, ``PACE_MARGIN`` under, and never
faster after a rest: calls saved up while nobody called would be slots borrowed from a window
that, at this pace, has almost none to spare (docs/benchmarks-analysis.md). Since a lower
estimate than the truth would never be corrected by another 429, the pace also creeps up, by
``RAISE_STEP`` every ``RAISE_EVERY_CALLS`` calls without a 429, until the window answers again
and the estimate is renewed.

The state is a plain mapping so that one process (``throttle.py``) and the processes of a
machine (``shared_pace.py``, a JSON file) keep it alike.
"""

from collections.abc import MutableMapping
from typing import Any

LEARN_MIN_CALLS = 10
"""Fewer answered calls than this between two 429s say too little about the account's rate."""
PACE_MARGIN = 0.98
"""The pace is this share of the rate read: under it, so the estimate's error on the fast side
costs a refusal rarely; close to it, as every percent is a percent of the sync's wall time."""
RAISE_EVERY_CALLS = 100
RAISE_STEP = 0.01
"""The pace grows 1% every 100 calls without a 429: a pace read too low reaches the account's
rate again in a few hundred calls, at the price of about one refusal then."""
EPISODE_SECONDS = 900.0
"""A 429 this long after the last one starts afresh: the account's load may have changed."""
IDLE_SECONDS = 5.0
"""A pause between two calls this long (or three paced intervals), outside a stall, means the
account rested: the window freed slots nobody used, so the span since the last 429 no longer
reads its rate (a scheduled run after a rest would read it far too low). The next 429 starts
the span afresh; the pace stays."""
EPISODE_KEYS = ("saturated_at", "saturated_calls", "last_429", "last_send")


def stall_began(state: MutableMapping[str, Any], now: float, answered: int) -> float | None:
    """A 429 began a stall at ``now``; ``answered`` is the account's count of answered calls so
    far (it only grows). Returns the pace learnt (seconds between calls), ``None`` when this
    429 opens an episode or the episode holds too few calls yet."""
    last = state.get("last_429")
    state["last_429"] = now
    start, start_calls = state.get("saturated_at"), state.get("saturated_calls")
    fresh = last is None or now - float(last) > EPISODE_SECONDS
    if fresh or start is None or start_calls is None or answered < int(start_calls):
        state["saturated_at"], state["saturated_calls"] = now, answered
        return None
    calls, span = answered - int(start_calls), now - float(start)
    if calls < LEARN_MIN_CALLS or span <= 0:
        return None
    state["paced_calls"] = 0  # a fresh reading: the creep starts over
    return span / (calls * PACE_MARGIN)


def call_sent(
    state: MutableMapping[str, Any], now: float, interval: float, stalled: bool = False
) -> None:
    """A call goes at ``now``: after a rest, the span since the last 429 is dropped
    (``IDLE_SECONDS``). A stall's probes are spaced by its pauses, not by a rest."""
    last = state.get("last_send")
    rested = last is not None and now - float(last) > max(IDLE_SECONDS, 3 * interval)
    if rested and not stalled:
        state.pop("saturated_at", None)
        state.pop("saturated_calls", None)
    state["last_send"] = now


def after_paced_call(state: MutableMapping[str, Any], interval: float) -> float:
    """One more call at the learnt ``interval``: the interval to keep, ``RAISE_STEP`` shorter
    every ``RAISE_EVERY_CALLS`` such calls."""
    paced = int(state.get("paced_calls") or 0) + 1
    if paced >= RAISE_EVERY_CALLS:
        state["paced_calls"] = 0
        return interval / (1.0 + RAISE_STEP)
    state["paced_calls"] = paced
    return interval


__all__ = [
    "EPISODE_KEYS",
    "EPISODE_SECONDS",
    "IDLE_SECONDS",
    "LEARN_MIN_CALLS",
    "PACE_MARGIN",
    "after_paced_call",
    "call_sent",
    "stall_began",
]
