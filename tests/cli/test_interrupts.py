"""Ctrl-C and SIGTERM stop a run cleanly in extract, normalize and load (issue 15): exit 130 /
143 with one line saying what was kept, no orphan files, and after the next run the destination
equals the API value for value. A second Ctrl-C stops at once.

Every run is the real CLI in a child process in its own session; signals go to its process
group, as a terminal's Ctrl-C does. Extract is long enough to signal from outside (a paced,
one-worker read); normalize and load are signalled from inside at their start (child.py).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import ITEMS, NOTES, assert_parity

from .conftest import Done, cli, emulator_env, signal_when

SLOW_READ = {
    "SOURCES__CASPIO__PAGE_SIZE": "50",
    "SOURCES__CASPIO__MAX_WORKERS": "1",
}


def pipeline_dir(work: Path) -> Path:
    return work / "dlt_data" / "pipelines" / "caspio"


def orphans(work: Path) -> list[str]:
    """What a finished run never leaves: dlt's per-run extract folders, packages in flight,
    half-written status files."""
    root = pipeline_dir(work)
    found = [
        str(p.relative_to(root))
        for p in (root / "normalize").glob("*")
        if p.is_dir() and p.name != "extracted"
    ]
    for stage in ("normalize/extracted", "load/new", "load/normalized"):
        found += [str(p.relative_to(root)) for p in (root / stage).glob("*")]
    found += [str(p.relative_to(root)) for p in root.glob("*.tmp")]
    return found


def assert_one_interrupt_line(done: Done, code: int, *needles: str) -> str:
    assert done.code == code, (done.code, done.err[-3000:])
    assert "Traceback" not in done.err
    lines = [ln for ln in done.err_lines if ln.startswith("caspio-sync: interrupted")]
    assert len(lines) == 1, done.err
    assert lines[0] == done.err_lines[-1]
    assert "next run" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def resume_and_compare(emulator: Any, work: Path, env: dict[str, str]) -> None:
    """The next run finishes or removes what the interrupted one left, and ends at parity."""
    emulator.configure(latency_ms=0)
    env = {k: v for k, v in env.items() if k not in SLOW_READ}
    done = cli(["run", "--duckdb-file", str(work / "sync.duckdb"), "--quiet"], env, work)
    assert done.code == 0, done.err[-3000:]
    assert orphans(work) == []
    assert_parity(emulator, work / "sync.duckdb", [ITEMS, NOTES])


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_extract(
    caspio_emulator_factory: Any, account: dict[str, Any], work: Path, signum: int, code: int
) -> None:
    emulator = caspio_emulator_factory(dataset=account, latency_ms=100)
    env = emulator_env(emulator, work, **SLOW_READ)
    argv = ["run", "--duckdb-file", str(work / "sync.duckdb"), "--progress-interval", "0.2"]
    done = signal_when(argv, env, work, lambda err: f"{ITEMS}: " in err and " of " in err, [signum])
    assert_one_interrupt_line(done, code, "while reading", "nothing of this run was loaded")
    assert orphans(work) == [], "the interrupted extract left its folder behind"
    records = [e for e in emulator.log if e.path.endswith(f"/{ITEMS}/records")]
    assert len(records) < 1200 / 50, "the read went on after the signal"
    resume_and_compare(emulator, work, env)


def test_second_ctrl_c_stops_at_once(
    caspio_emulator_factory: Any, account: dict[str, Any], work: Path
) -> None:
    """The first Ctrl-C asks for a clean stop; the second does not wait for it (a hanging
    call would otherwise hold the run for its whole timeout). The next run cleans up."""
    emulator = caspio_emulator_factory(dataset=account, latency_ms=100, hang_seconds=15)
    env = emulator_env(emulator, work, **SLOW_READ)
    argv = ["run", "--duckdb-file", str(work / "sync.duckdb"), "--progress-interval", "0.2"]

    scripted: list[bool] = []

    def reading(err: str) -> bool:
        """Ready once a call is hanging: then a clean stop must wait for it, and only the
        second signal can end the run at once (the script is consumed when the call starts)."""
        if not scripted:
            if f"{ITEMS}: " in err and " of " in err:
                emulator.script_faults(["hang"])
                scripted.append(True)
            return False
        return not emulator.knobs.script

    done = signal_when(argv, env, work, reading, [signal.SIGINT, signal.SIGINT], timeout=20)
    assert done.code == 130, done.err
    assert "stopped at once" in done.err
    assert "Traceback" not in done.err
    emulator.knobs.script.clear()
    emulator.configure(latency_ms=0)
    resume_and_compare(emulator, work, env)


@pytest.mark.parametrize(
    ("step", "signame", "code"),
    [("normalize", "SIGINT", 130), ("load", "SIGTERM", 143)],
)
def test_signal_during_normalize_and_load(
    emulator: Any, work: Path, step: str, signame: str, code: int
) -> None:
    env = emulator_env(emulator, work)
    argv = ["run", "--duckdb-file", str(work / "sync.duckdb")]
    done = cli(argv, env, work, child=[step, signame])
    assert "SIGNAL_AT" in done.out
    assert_one_interrupt_line(done, code, f"during {step}", "loads first")
    leftovers = orphans(work)
    assert all(
        not p.startswith("normalize/") or p.startswith("normalize/extracted") for p in leftovers
    )
    resume_and_compare(emulator, work, env)
