"""One pace per account across processes (``shared_pace.py``): two processes that each pace
at 8 calls/s against an account that allows 10 per second are refused when each keeps its own
pace, and never when they share the account's schedule through the token cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sources.caspio.shared_pace import SharedPace

CHILD = """
import sys
from sources.caspio import CaspioClient, CaspioCredentials
url, cid, secret, cache, shared = sys.argv[1:6]
client = CaspioClient(
    CaspioCredentials(client_id=cid, client_secret=secret, integration_url=url),
    requests_per_second=8,
    token_cache=shared == "1",
    token_cache_dir=cache,
    backoff_base=0.05,
    backoff_max=0.2,
)
for _ in range(24):
    client.list_tables()
print(client.stats.retries.get("429", 0))
"""


def _two_processes(emu: Any, tmp_path: Path, shared: bool) -> int:
    """Runs two paced clients at once; returns the calls the account refused (429)."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cache = str(tmp_path / ("shared" if shared else "none"))
    args = [emu.base_url, emu.client_id, emu.client_secret, cache, "1" if shared else "0"]
    if shared:  # one token for both: the pace test is about calls, not the token race
        warm = subprocess.run(
            [sys.executable, "-c", CHILD.replace("range(24)", "range(1)"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert warm.returncode == 0, warm.stderr
    emu.reset_log()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    return sum(1 for entry in emu.log if entry.status == 429)


def test_processes_share_the_accounts_pace(caspio_emulator_factory: Any, tmp_path: Path) -> None:
    emu = caspio_emulator_factory(dataset=None, rate_limit=(10, 1.0))
    assert _two_processes(emu, tmp_path, shared=True) == 0
    answered = sorted(e.time for e in emu.log if e.status == 200 and not e.is_token)
    assert len(answered) == 48
    # the account's window: never more than 10 answered calls in any second
    assert max(sum(1 for t in answered if s <= t < s + 1.0) for s in answered) <= 10


def test_without_the_shared_file_the_same_processes_are_refused(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    """The control: the same two processes, each with its own pace, overrun the window."""
    emu = caspio_emulator_factory(dataset=None, rate_limit=(10, 1.0))
    assert _two_processes(emu, tmp_path, shared=False) > 0


def test_slots_are_taken_in_turn_and_a_pause_binds_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``SharedPace`` objects on one file (as two processes), on a frozen clock."""
    import sources.caspio.shared_pace as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    first, second = SharedPace(tmp_path / "a.pace"), SharedPace(tmp_path / "a.pace")
    waits = [pace.reserve(0.5)[0] for pace in (first, second, first, second)]
    assert waits == [0.0, 0.5, 1.0, 1.5]
    second.publish(pause=30.0)
    assert first.reserve(0.0)[0] == 30.0, "an unpaced process waits out another's 429"
    second.end_stall(0)
    now[0] += 30.0
    first.count(40)
    now[0] += 20.0
    learned = second.publish(pause=0.1).learned  # 40 calls between two 429s, 50 s apart
    assert learned == pytest.approx(50.0 / (40 * 0.98))
    second.end_stall(0)
    now[0] += 100.0
    assert first.reserve(0.1)[1] == learned, "a learned pace binds the others for a while"
    now[0] += module.LEARNED_PACE_SECONDS
    assert second.reserve(0.1)[1] == 0.1, "and then expires"


def _two_processes_that_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[float], SharedPace, SharedPace, float]:
    """Two processes on one frozen clock, and a pace learnt from 40 calls between two 429s
    20 s apart (2/s, 2% under): ``(clock, first, second, interval)``."""
    import sources.caspio.shared_pace as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: now[0])
    first, second = SharedPace(tmp_path / "a.pace"), SharedPace(tmp_path / "a.pace")
    first.publish(pause=0.1)
    first.end_stall(0)
    first.count(40)
    now[0] += 20.0
    interval = first.publish(pause=0.1).learned
    assert interval is not None and interval == pytest.approx(20.0 / (40 * 0.98))
    first.end_stall(0)
    return now, first, second, interval


def test_a_rest_saves_up_no_calls_for_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a rest, the processes' calls keep the learnt pace from the first: slots saved up
    would be borrowed from a window that, at this pace, has almost none to spare."""
    now, first, second, interval = _two_processes_that_learnt(tmp_path, monkeypatch)
    now[0] += 60.0
    waits = [pace.reserve(0.0)[0] for pace in (first, second) * 5]
    assert waits == pytest.approx([i * interval for i in range(10)])


def test_a_rest_starts_the_accounts_span_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across processes too: a call after a rest drops the span since the last 429, so the next
    429 keeps the pace instead of reading the rest as a window that allowed nothing."""
    now, first, second, learned = _two_processes_that_learnt(tmp_path, monkeypatch)
    first.reserve(0.0)  # the run's last call
    now[0] += 120.0  # a rest; then the next run
    second.reserve(0.0)
    second.count(40)
    now[0] += 5.0
    assert second.publish(pause=0.1).learned is None, "the rest was read as the account's rate"
    assert second.reserve(0.0)[1] == learned
