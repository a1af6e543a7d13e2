"""Fixtures of the command-line tests: an emulator account, an isolated environment, and the
real `caspio-sync` in a child process with a hard timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import credential_env, make_dataset

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def base_env(work: Path, **extra: str) -> dict[str, str]:
    """A scheduled job's environment: nothing of the developer's, dlt's folders in ``work``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "LANG", "LC_ALL", "TZ", "USER", "SYSTEMROOT")
    }
    env.update(
        HOME=str(work / "home"),
        DLT_DATA_DIR=str(work / "dlt_data"),
        RUNTIME__DLTHUB_TELEMETRY="false",
        PYTHONPATH=str(ROOT),
        SOURCES__CASPIO__TOKEN_CACHE_DIR=str(work / "token_cache"),
    )
    env.update(extra)
    return env


def emulator_env(emulator: Any, work: Path, **extra: str) -> dict[str, str]:
    return base_env(work, **{**credential_env(emulator), **extra})


def cli(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    child: list[str] | None = None,
    timeout: float = TIMEOUT,
) -> Done:
    """Run `caspio-sync ARGV` (or tests/cli/child.py CHILD -- ARGV) to the end."""
    command = [sys.executable, "-m", "pipelines.cli", *argv]
    if child is not None:
        command = [sys.executable, str(ROOT / "tests/cli/child.py"), *child, "--", *argv]
    done = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def signal_when(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    ready: Callable[[str], bool],
    signals: list[int],
    timeout: float = TIMEOUT,
) -> Done:
    """Start `caspio-sync`, wait until its stderr satisfies ``ready``, then send ``signals``
    to its process group (as a terminal's Ctrl-C does), and wait for the end."""
    err_path = cwd / "stderr.txt"
    out_path = cwd / "stdout.txt"
    with err_path.open("w") as err, out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while not ready(err_path.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"never ready: {err_path.read_text()[-2000:]}")
                time.sleep(0.05)
            for signum in signals:
                os.killpg(proc.pid, signum)
                time.sleep(0.05)
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return Done(code, out_path.read_text(), err_path.read_text())


@pytest.fixture
def account() -> dict[str, Any]:
    """The reliability account: Items (1,200 rows, a TIMESTAMP cursor) and Notes (60 rows)."""
    return make_dataset()


@pytest.fixture
def emulator(caspio_emulator_factory: Callable[..., Any], account: dict[str, Any]) -> Any:
    return caspio_emulator_factory(dataset=account)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path
