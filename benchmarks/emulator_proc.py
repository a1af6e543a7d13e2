"""The emulator in its own process, driven through its admin HTTP paths.

The emulator must not share a process (or a GIL) with any contender: a contender's CPU time and
peak RSS must be its own, and an in-process server would steal the contender's interpreter.
`caspio-emulator serve --port 0` prints its base URL and credentials; everything else (latency,
rate limit, the request log) goes over `/__emulator__/...`, which real Caspio does not have.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

URL_RE = re.compile(r"(https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+)")
REPO_ROOT = Path(__file__).resolve().parent.parent
ID_RE = re.compile(r"client[ _-]?id\W+([A-Za-z0-9_\-\.]+)", re.IGNORECASE)
SECRET_RE = re.compile(r"client[ _-]?secret\W+([A-Za-z0-9_\-\.]+)", re.IGNORECASE)


@dataclass
class LogEntry:
    """One API call from the emulator's request log (admin calls are never logged)."""

    method: str
    path: str
    query: str
    status: int
    is_token: bool


class EmulatorProcess:
    """`caspio-emulator serve` as a child process; stop() or use as a context manager."""

    def __init__(
        self,
        generate: Mapping[str, int],
        work_dir: Path,
        startup_timeout: float = 900.0,
        extra_args: list[str] | None = None,
    ) -> None:
        self.generate = dict(generate)
        self.work_dir = work_dir
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.client_id = ""
        self.client_secret = ""
        self.startup_seconds = 0.0
        self._lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.http = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "caspio_emulator.cli",
            "serve",
            "--empty",
            "--host",
            "127.0.0.1",
        ]
        cmd += ["--port", "0"]
        for table, rows in self.generate.items():
            cmd += ["--generate", f"{table}={rows}"]
        return cmd + self.extra_args

    def start(self) -> EmulatorProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # the repo on the path: the editable install may predate the emulator package
        from . import measure

        roots = [str(measure.CODE_ROOT), str(REPO_ROOT), os.environ.get("PYTHONPATH")]
        path = os.pathsep.join(filter(None, roots))
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.work_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self._await_banner()
        self._await_ready()
        self.startup_seconds = time.perf_counter() - started
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _await_banner(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not (self.base_url and self.client_id and self.client_secret):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"emulator printed no URL/credentials: {self.output[-20:]}")
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"emulator exited with {self.proc.returncode}: {self.output[-20:]}"
                    ) from None
                continue
            self.output.append(line.rstrip())
            self._parse_banner_line(line)

    def _parse_banner_line(self, line: str) -> None:
        if not self.base_url and (match := URL_RE.search(line)):
            self.base_url = match.group(1)
        if not self.client_id and (match := ID_RE.search(line)):
            self.client_id = match.group(1)
        if not self.client_secret and (match := SECRET_RE.search(line)):
            self.client_secret = match.group(1)

    def _await_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.admin_url("log"), timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"emulator at {self.base_url} never answered its admin log")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin paths -----------------------------------------------------------------------
    def admin_url(self, name: str) -> str:
        return f"{self.base_url}/__emulator__/{name}"

    def reset_log(self) -> None:
        self.http.post(self.admin_url("reset"), timeout=30).raise_for_status()

    def configure(self, **settings: Any) -> None:
        self.http.post(self.admin_url("config"), json=settings, timeout=30).raise_for_status()

    def log(self) -> list[LogEntry]:
        response = self.http.get(self.admin_url("log"), timeout=60)
        response.raise_for_status()
        body = response.json()
        entries = body.get("log", body.get("entries")) if isinstance(body, dict) else body
        return [parse_entry(entry) for entry in entries or []]

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def parse_entry(entry: Any) -> LogEntry:
    """A log entry as the admin path returns it: a dict, or a list in field order."""
    if isinstance(entry, dict):
        query = entry.get("query") or ""
        if isinstance(query, dict):
            query = "&".join(f"{k}={v}" for k, v in query.items())
        return LogEntry(
            method=str(entry.get("method", "")),
            path=str(entry.get("path", "")),
            query=str(query),
            status=int(entry.get("status", 0)),
            is_token=bool(entry.get("is_token", False)),
        )
    method, path, query, status, is_token = list(entry)[:5]
    return LogEntry(str(method), str(path), str(query or ""), int(status), bool(is_token))
