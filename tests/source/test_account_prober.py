"""One prober per account across processes (``shared_pace.py``): three processes on one
machine fill a binding window together; after the 429, they all wait, exactly one of them
probes until the window reopens, and the pace learnt is the account's (the calls of all three
between its 429s), not one process's share.

Each process reads the fields of its own table, so the emulator's request log says which
process sent each call. The processes share a token cache directory (and so the pace file).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from sources.caspio.auth import TokenCache
from sources.caspio.pace_estimate import PACE_MARGIN
from sources.caspio.retries import Backoff
from sources.caspio.stats import CaspioStats
from sources.caspio.throttle import Throttle
from sources.caspio.transport import Retryable

LIMIT, PERIOD = 10, 2.0
"""The account's window: 10 calls per 2 s, three processes of 15 calls each."""
PROCESSES = ("P1", "P2", "P3")
IN_FLIGHT = 0.05
"""Calls arriving this soon after the first 429 was answered were sent before any process
could have read the pause."""

CHILD = """
import sys
import time
import types
from sources.caspio import CaspioClient, CaspioCredentials
url, cid, secret, cache, table, calls = sys.argv[1:7]
client = CaspioClient(
    CaspioCredentials(client_id=cid, client_secret=secret, integration_url=url),
    token_cache_dir=cache,
    backoff_base=0.1,
    backoff_max=0.3,
)
for _ in range(int(calls)):
    client.get_fields("tables", table)
"""


def _run(emu: Any, cache: Path, calls: int, tables: tuple[str, ...]) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    args = [emu.base_url, emu.client_id, emu.client_secret, str(cache)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args, table, str(calls)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for table in tables
    ]
    for child in children:
        _, err = child.communicate(timeout=180)
        assert child.returncode == 0, err


def test_one_process_probes_and_the_pace_is_the_accounts(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(
        dataset=None, generate={name: 1 for name in PROCESSES}, latency_ms=20
    )
    cache = tmp_path / "tokens"
    _run(emu, cache, 1, ("P1",))  # one token for all: the test is about calls, not tokens
    for pace in cache.glob("*.pace"):  # and about the three processes' calls only
        pace.unlink()
    emu.configure(rate_limit=(LIMIT, PERIOD))
    emu.reset_log()
    _run(emu, cache, 15, PROCESSES)

    calls = sorted(
        (e.time - e.duration_ms / 1000, e.time, e.status, e.path.split("/")[-2])
        for e in emu.log
        if not e.is_token
    )
    assert sum(1 for *_, status, _ in calls if status == 200) == 15 * len(PROCESSES)
    refused = [c for c in calls if c[2] == 429]
    assert refused, "the window never bound"
    answered_at = min(end for _, end, _, _ in refused)
    stall_end = min(
        arrival for arrival, _, status, _ in calls if status == 200 and arrival > answered_at
    )
    probes = [c for c in refused if answered_at + IN_FLIGHT < c[0] < stall_end]
    probers = {table for *_, table in probes}
    assert probes, "the first probe after the pause went through: no probing to compare"
    assert len(probers) == 1, f"{len(probers)} processes probed the full window: {probes}"

    pace_file = TokenCache(str(cache)).path_for(emu.base_url.split("//")[1], emu.client_id, ".pace")
    state = json.loads(pace_file.read_text())
    learned = 1.0 / float(state["interval"])
    print(f"\n{len(probes)} refused probes from {probers}; learned {learned:.2f} calls/s")
    # the burst: the window's 10 calls, of all three processes, over about one period (more
    # with the processes' staggered starts): more than one process's share, never more than
    # the window allows
    assert LIMIT / PERIOD / len(PROCESSES) < learned <= LIMIT / PERIOD, (learned, state)


def test_the_probe_protocol_on_a_frozen_clock(tmp_path: Path, monkeypatch: Any) -> None:
    """Two ``SharedPace`` objects on one file, as two processes: after a 429 both wait out
    the pause, then only the first probes; its refused probe pauses both again; its probe
    through ends the stall. The next stall's 429 teaches the pace of both processes' calls
    between the two 429s."""
    import sources.caspio.shared_pace as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    first, second = module.SharedPace(tmp_path / "a.pace"), module.SharedPace(tmp_path / "a.pace")
    first.count(7)  # before the window filled: not part of the rate
    published = first.publish(pause=1.0, thread=1)
    assert published.probe and published.learned is None, "one 429 says only: full"
    assert not second.publish(pause=0.5, thread=2).probe, "a second 429 in flight does not"
    assert second.book(0.0, 2) == module.Booking(1.0, 0.0, hold=True)
    now[0] += 1.0
    assert second.book(0.0, 2).hold, "the pause is over, but the prober probes, not the rest"
    assert first.book(0.0, 3).hold, "another thread of the prober's process holds too"
    assert first.book(0.0, 1).probe
    assert first.publish(pause=2.0, thread=1).probe, "refused again: still the prober"
    now[0] += 2.0
    assert second.book(0.0, 2).hold and first.book(0.0, 1).probe
    first.count(1)
    first.end_stall(1)
    assert not second.book(0.0, 2).hold, "the stall is over"
    for i in range(19):  # 20 answered calls (the probe's included) in the 7 s since the 429
        (first if i % 2 else second).count(1)
        now[0] += 0.2
    now[0] += 7.0 - 3.0 - 19 * 0.2
    published = second.publish(pause=1.0, thread=2)
    assert published.learned == pytest.approx(1.0 / (20 / 7.0 * PACE_MARGIN))
    now[0] += 1.0
    booking = second.book(0.0, 2)
    assert booking.probe and booking.interval == published.learned, "paced from now on"


def test_a_dead_probers_role_is_taken_over(tmp_path: Path, monkeypatch: Any) -> None:
    """The prober's process is gone (killed mid-probe): the next caller probes at once."""
    import sources.caspio.shared_pace as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    first, second = module.SharedPace(tmp_path / "a.pace"), module.SharedPace(tmp_path / "a.pace")
    assert first.publish(pause=1.0, thread=1).probe
    now[0] += 1.0
    assert second.book(0.0, 2).hold, "a living prober holds the others"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    state = json.loads((tmp_path / "a.pace").read_text())
    state["prober_pid"] = int(gone.stdout)
    (tmp_path / "a.pace").write_text(json.dumps(state))
    assert second.book(0.0, 2).probe, "a prober whose process is gone holds nobody back"


class _Virtual:
    """Wall and monotonic time that move only when someone sleeps or waits (one OS thread
    plays several of the client's threads, named by ``thread``)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.thread = 0
        self.waits = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def condition(self) -> Any:
        virtual = self

        class Condition:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def wait(self, timeout: float | None = None) -> bool:
                virtual.waits += 1
                assert virtual.waits < 1000, "a thread waits for ever: the probers deadlock"
                virtual.sleep(timeout or 0.0)
                return True

            def notify_all(self) -> None:
                return None

        return Condition()


def test_the_accounts_prober_is_never_held_by_its_clients_own(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Thread V of a client probes for the account (its lease from the file); thread W of the
    same client then meets a 429 of a call already in flight and becomes the client's own
    prober; V's probe fails another way (a 500) and V tries again. V must send: W waits for
    V's answer through the file, so V waiting for W would hold every process up."""
    import sources.caspio.shared_pace as pace_module
    import sources.caspio.throttle as throttle_module

    virtual = _Virtual()
    fake_time = types.SimpleNamespace(
        monotonic=virtual.clock, sleep=virtual.sleep, time=virtual.clock
    )
    monkeypatch.setattr(throttle_module, "time", fake_time)
    monkeypatch.setattr(pace_module, "time", fake_time)
    monkeypatch.setattr(
        throttle_module,
        "threading",
        types.SimpleNamespace(Condition=virtual.condition, get_ident=lambda: virtual.thread),
    )
    path = tmp_path / "a.pace"
    other = pace_module.SharedPace(path)  # another process, whose probe ended in a 500
    assert other.publish(pause=0.5, thread=1).probe
    other.release_probe(1)
    virtual.sleep(0.5)
    throttle = throttle_module.Throttle(None, pace_module.SharedPace(path))
    V, W = 11, 12
    virtual.thread = V
    throttle.before_call()  # V takes the free probe
    virtual.thread = W
    throttle.throttled(0.3)  # W: a call in flight refused; W is its client's prober now
    virtual.sleep(0.3)
    virtual.thread = V
    sent = throttle.before_call()  # V's probe got a 500: V sends again
    throttle.succeeded(sent)
    throttle.released()
    assert "stall_since" not in json.loads(path.read_text()), "V's answer ended the stall"
    virtual.thread = W
    throttle.succeeded(throttle.before_call())


def test_refused_probes_wait_at_least_half_their_step() -> None:
    """The first 429 is retried soon (full jitter: a one-off refusal costs little time); a
    probe refused again waits between half and all of its step, so one prober spends fewer
    billed probes on a full window. Other failures keep full jitter."""
    slept: list[float] = []
    backoff = Backoff(
        base=0.5,
        cap=30.0,
        max_retries=10,
        host="h",
        base_url="u",
        stats=CaspioStats(),
        throttle=Throttle(),
        sleep=slept.append,
        clock=lambda: 0.0,
        rng=random.Random(7),
    )

    def delays(reason: str, attempt: int) -> list[float]:
        slept.clear()
        for _ in range(200):
            backoff.pause(Retryable(reason, reason), attempt, 1e9, "GET /x", 0.0)
        return list(slept)

    assert min(delays("429", 1)) < 0.1
    for attempt in (2, 3, 4):
        step = 0.5 * 2 ** (attempt - 1)
        got = delays("429", attempt)
        assert step / 2 <= min(got) and max(got) <= step, (attempt, min(got), max(got))
    assert min(delays("503", 3)) < 0.5
