"""Run one contender in its own process and measure it from outside.

`os.wait4` gives the child's own user+sys CPU time and peak RSS (`ru_maxrss`), so nothing the
harness or the emulator does is charged to a contender. Every child gets a hard timeout and its
own process group, so a hung contender is killed with everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .contenders.common import RESULT_PREFIX

REPO_ROOT = Path(__file__).resolve().parent.parent
# A contender whose process tree passes this is killed and its run marked failed: the machine
# is shared, and dlt's default DuckDB insert path can take gigabytes for 200,000 wide rows.
DEFAULT_RSS_CAP_MB = 12_000.0
# Where children import the code under test from: the repo, or a frozen copy (`snapshot.py`).
CODE_ROOT: Path = REPO_ROOT


@dataclass
class ProcessResult:
    """What the harness saw of one child process."""

    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    timed_out: bool
    killed_for_memory: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0
            and not self.timed_out
            and not self.killed_for_memory
            and bool(self.result)
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_s"] = self.cpu_s
        data["ok"] = self.ok
        return data


def contender_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: the repo importable, no telemetry, no user-level Caspio config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__CASPIO__")}
    roots = [str(CODE_ROOT), str(REPO_ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, roots))
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_module(
    module: str,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    log_file: Path,
    rss_cap_mb: float = DEFAULT_RSS_CAP_MB,
) -> ProcessResult:
    """`python -m module argv...`, its stdout/stderr into `log_file`; parse the result line."""
    cwd.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        status, usage, stop = _wait(proc, timeout_s, rss_cap_mb)
        wall = time.perf_counter() - started
    text = log_file.read_text(errors="replace")
    returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
    return ProcessResult(
        returncode=returncode,
        wall_s=wall,
        user_s=usage.ru_utime if usage else 0.0,
        sys_s=usage.ru_stime if usage else 0.0,
        peak_rss_mb=(usage.ru_maxrss / 1024.0) if usage else 0.0,  # Linux: KiB
        timed_out=stop == "timeout",
        killed_for_memory=stop == "memory",
        result=parse_result(text),
        stderr_tail="" if returncode == 0 else text[-3000:],
    )


def _wait(
    proc: subprocess.Popen[bytes], timeout_s: float, rss_cap_mb: float
) -> tuple[int | None, Any, str | None]:
    """Reap the child with its rusage; kill its group on timeout or past the RSS cap."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    watched = _process(proc.pid)
    next_rss_check = 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage, None
        stop = "timeout" if time.monotonic() > deadline else None
        if stop is None and watched is not None and time.monotonic() >= next_rss_check:
            next_rss_check = time.monotonic() + 0.25  # /proc scans are not free on 2 cores
            if _tree_rss_mb(watched) > rss_cap_mb:
                stop = "memory"
        if stop is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return status, usage, stop
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _tree_rss_mb(process: psutil.Process) -> float:
    try:
        tree = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in tree) / 1024**2
    except psutil.Error:
        return 0.0


def parse_result(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_PREFIX):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return parsed
    return {}
