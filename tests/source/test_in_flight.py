"""The one budget of calls in flight (``in_flight.py``): AIMD by hand on an injected clock, and
the client's calls of two tables against the emulator, sharing the budget and never above it."""

from __future__ import annotations

import threading
from typing import Any

import dlt
import pytest

from sources.caspio import CaspioClient, caspio
from sources.caspio.in_flight import InFlight, Slot
from tests.helpers import credentials_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rounds(limiter: InFlight, clock: Clock, callers: int, latency: float, n: int) -> list[int]:
    """``n`` rounds of ``callers`` that each want a slot: those that get one are answered
    (2xx) ``latency`` s later; returns the limit after each round."""
    limits = []
    for _ in range(n):
        slots = [slot for slot in (limiter.try_acquire() for _ in range(callers)) if slot]
        assert len(slots) <= limiter.cap
        assert len(slots) == limiter.in_flight
        clock.now += latency
        for slot in slots:
            limiter.release(slot, "ok")
        limits.append(limiter.limit)
    return limits


def test_starts_at_four_and_never_lets_more_than_the_limit_in() -> None:
    limiter = InFlight(8, clock=Clock())
    slots = [limiter.try_acquire() for _ in range(5)]
    assert [slot is not None for slot in slots] == [True] * 4 + [False]
    assert limiter.in_flight == 4
    assert InFlight(2).limit == 2, "the cap bounds the start too"


def test_grows_by_one_slot_per_window_while_callers_queue_up_to_the_cap() -> None:
    clock = Clock()
    limiter = InFlight(8, clock=clock)
    limits = rounds(limiter, clock, callers=12, latency=0.25, n=12)
    assert limits == sorted(limits), limits
    assert limits[0] == 4, "the first round's calls were not queued behind anyone"
    assert limits[-1] == 8, limits
    assert max(limits) == 8
    # additive: about one slot per round of calls, never a jump
    assert all(b - a <= 1 for a, b in zip(limits, limits[1:], strict=False)), limits


def test_does_not_grow_when_nobody_waits_for_a_slot() -> None:
    clock = Clock()
    limiter = InFlight(8, clock=clock)
    assert rounds(limiter, clock, callers=3, latency=0.25, n=10) == [4] * 10


def test_a_429_halves_the_limit_once_per_window_down_to_one() -> None:
    clock = Clock()
    limiter = InFlight(8, initial=8, clock=clock)
    first = [limiter.try_acquire() for _ in range(8)]
    limiter.release(first[0], "throttled")  # type: ignore[arg-type]
    assert limiter.limit == 4
    limiter.release(first[1], "throttled")  # type: ignore[arg-type]
    assert limiter.limit == 4, "sent before the halving: the same congestion, not a new one"
    for slot in first[2:]:
        limiter.release(slot, "failed")  # type: ignore[arg-type]
    assert limiter.limit == 4, "other errors say nothing about the account's capacity"
    for expected in (2, 1, 1):
        slot = limiter.try_acquire()
        assert slot is not None
        limiter.release(slot, "throttled")
        assert limiter.limit == expected
    assert limiter.halvings == 4


def test_clearly_rising_latency_halves_the_limit_and_jitter_does_not() -> None:
    clock = Clock()
    limiter = InFlight(8, initial=8, clock=clock)

    def answered(latency: float) -> None:
        slot = limiter.try_acquire()
        assert slot is not None
        clock.now += latency
        limiter.release(slot, "ok")

    for latency in [0.002, 0.01, 0.004, 0.02, 0.003] * 4:  # a fast local server's jitter
        answered(latency)
    assert limiter.limit == 8
    for _ in range(10):
        answered(0.5)  # a queue builds: the lowest stays 2 ms
    assert limiter.limit == 4, "0.5 s is more than twice and 0.25 s above 2 ms"
    limiter = InFlight(8, initial=8, clock=clock)
    for _ in range(10):
        answered(0.3)
    for _ in range(3):
        answered(0.5)
    assert limiter.limit == 8, "0.5 s against 0.3 s is noise, not a queue"
    for _ in range(10):
        answered(1.0)
    assert limiter.limit == 4


def test_blocked_callers_are_served_first_come_first_served() -> None:
    limiter = InFlight(1, initial=1)
    held = limiter.acquire()
    order: list[str] = []
    threads = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=lambda n=name: order.append(_take_and_free(limiter, n)))
        thread.start()
        threads.append(thread)
        _wait_until_queued(limiter, len(threads))
    limiter.release(held, "ok")
    for thread in threads:
        thread.join(timeout=30)
    assert order == ["first", "second", "third"]


def _take_and_free(limiter: InFlight, name: str) -> str:
    slot = limiter.acquire()
    assert slot.saturated, "a caller that waited marks its slot saturated"
    limiter.release(slot, "failed")
    return name


def _wait_until_queued(limiter: InFlight, callers: int) -> None:
    event = threading.Event()
    for _ in range(3000):
        if limiter.queued == callers:
            return
        event.wait(0.01)
    raise AssertionError(f"{callers} callers never queued")


def _intervals(emu: Any) -> list[tuple[float, float, str]]:
    """(arrival, end, table) of every records or fields call in the emulator's log."""
    out = []
    for entry in emu.log:
        parts = entry.path.strip("/").split("/")
        if "tables" in parts and parts.index("tables") < len(parts) - 1:
            end = entry.time
            out.append((end - entry.duration_ms / 1000, end, parts[parts.index("tables") + 1]))
    return out


def _most_at_once(intervals: list[tuple[float, float, str]]) -> int:
    events = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


TABLES = ["North", "South", "East", "West"]


def test_tables_share_one_budget_and_overlap(caspio_emulator_factory: Any, tmp_path: Any) -> None:
    """Four tables of 6 pages each, 60 ms a call, a cap of 2: the tables' calls are on the
    wire at the same time, and the server never sees more than 2 calls at once (without the
    budget, dlt's threads send the tables' first calls side by side, 4 at once)."""
    emu = caspio_emulator_factory(
        dataset=None, generate={name: 600 for name in TABLES}, latency_ms=60
    )
    client = CaspioClient(credentials_for(emu), max_workers=2, token_cache=False)
    client.get("/tables")  # the token, before the log that counts
    emu.reset_log()
    pipeline = dlt.pipeline(
        "in_flight_tables",
        destination=dlt.destinations.duckdb(str(tmp_path / "four.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        dataset_name="caspio",
    )
    pipeline.run(caspio(client.credentials, tables=TABLES, page_size=100, client=client))
    calls = _intervals(emu)
    assert {t for *_, t in calls} == set(TABLES)
    assert len(calls) >= 4 * 7
    assert _most_at_once(calls) <= 2, "more calls on the wire than the budget allows"
    pairs = sum(1 for s, e, t in calls for s2, e2, t2 in calls if t < t2 and s < e2 and s2 < e)
    assert pairs > 0, "the tables' calls never overlapped"
    first_call = {name: min(s for s, _, t in calls if t == name) for name in TABLES}
    last = max(TABLES, key=first_call.__getitem__)
    assert any(e > first_call[last] for _, e, t in calls if t != last), (
        "the last table's first call waited until every other table was read"
    )
    pipeline.drop()


def test_a_429_halves_the_clients_limit(caspio_emulator_factory: Any) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"Items": 10})
    client = CaspioClient(
        credentials_for(emu), max_workers=8, token_cache=False, backoff_base=0.01, backoff_max=0.02
    )
    client.list_tables()
    assert client.in_flight.limit == 4
    emu.script_faults(["429"])
    client.list_tables()
    assert client.stats.retries.get("429") == 1
    assert client.in_flight.limit == 2
    assert client.in_flight.halvings == 1


@pytest.mark.parametrize("cap", [1, 3])
def test_the_clients_budget_is_its_max_workers(cap: int) -> None:
    client = CaspioClient(
        base_url="http://127.0.0.1:9", client_id="x", client_secret="y", max_workers=cap
    )
    assert client.in_flight.cap == cap
    assert isinstance(client.in_flight.try_acquire(), Slot)
    client.close()
