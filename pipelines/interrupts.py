"""Ctrl-C and SIGTERM stop a run cleanly, in any step; a second one stops it at once.

Why our own handlers: Python's default raises ``KeyboardInterrupt`` wherever the main thread
happens to be (dlt then reports a long error, or a worker thread keeps reading), dlt's own
handlers are active only inside normalize and load and forget the signal when those end (the
run then carried on and exited 0), and a process started in the background by a shell
inherits SIGINT ignored. Here the first signal only sets a flag, and every place that could
keep the run going looks at it:

- the Caspio client, before each call and in each backoff wait (``arm``): the read stops at
  the next page, the pages already read are dropped with the extract;
- dlt, through its own signal flag: extract stops at the next item, normalize after its
  current file, load after the jobs already running (their rows are committed, the rest of
  the package waits for the next run).

The command then exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was kept. A
second signal exits at once with the same code; whatever it leaves behind is finished or
removed by the next run (``cleanup.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from dlt.common.runtime import signals as dlt_signals

from sources.caspio import CallBudget, CaspioClient

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES: dict[int, str] = {int(signal.SIGINT): "Ctrl-C (SIGINT)", int(signal.SIGTERM): "SIGTERM"}

_received = threading.Event()
_signum: int = 0
_installed = False
_on_first: list[Callable[[int], None]] = []


class RunInterrupted(Exception):
    """Raised in a fetch thread or a backoff wait once a stop was asked for."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {NAMES.get(signum, signum)}")


def received() -> int:
    """The signal that asked this run to stop (0: none)."""
    return _signum if _received.is_set() else 0


def installed() -> bool:
    """True while ``guard()`` owns SIGINT/SIGTERM in this process."""
    return _installed


def exit_code(signum: int) -> int:
    return 128 + signum


def check() -> None:
    """Raise ``RunInterrupted`` if a stop was asked for."""
    if _received.is_set():
        raise RunInterrupted(_signum)


def on_first_signal(callback: Callable[[int], None]) -> None:
    """Call ``callback(signum)`` (in the main thread) when the first signal arrives."""
    _on_first.append(callback)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _signum
    if _received.is_set():
        # the second signal: stop now, leaving the rest to the next run's cleanup
        os.write(
            sys.stderr.fileno(),
            f"\ncaspio-sync: stopped at once by a second {NAMES.get(signum, signum)}; the "
            "next run cleans up and resumes\n".encode(),
        )
        os._exit(exit_code(_signum or signum))
    _signum = signum
    _received.set()
    dlt_signals.set_received_signal(signum)
    dlt_signals.wake_all()
    for callback in _on_first:
        with contextlib.suppress(Exception):
            callback(signum)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Own SIGINT and SIGTERM for the block (main thread only), then restore the handlers."""
    global _installed, _signum
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _received.clear()
    _signum = 0
    _on_first.clear()
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    _installed = True
    try:
        yield
    finally:
        _installed = False
        for sig, old in saved.items():
            # once a stop is done, a late second signal is ignored: the interpreter's exit
            # resets Python's handlers and the signal would kill the process (-2), not 130
            signal.signal(sig, signal.SIG_IGN if _received.is_set() else old)
        _on_first.clear()


class StopOnSignal(CallBudget):
    """The client's budget hook: refuses every call once a stop was asked for, then charges
    the real budget (``--max-calls``) if there is one."""

    def __init__(self, inner: CallBudget | None = None) -> None:
        super().__init__(inner.limit if inner is not None else sys.maxsize)
        self.inner = inner

    @property
    def remaining(self) -> int:
        return self.inner.remaining if self.inner is not None else sys.maxsize

    def charge(self, call: str = "other", obj: str | None = None) -> None:
        check()
        if self.inner is not None:
            self.inner.charge(call, obj)


def _interruptible_sleep(seconds: float) -> None:
    """A backoff wait that ends as soon as a stop is asked for."""
    if _received.wait(seconds):
        check()


def arm(client: CaspioClient) -> None:
    """Make ``client`` stop at its next call or wait once a signal arrives (while guarded)."""
    if not _installed:
        return
    if not isinstance(client.budget, StopOnSignal):
        client.budget = StopOnSignal(client.budget)
    client.backoff.sleep = _interruptible_sleep


def budget(inner: CallBudget | None) -> CallBudget | None:
    """``inner`` wrapped so that it also stops on a signal (while guarded)."""
    return StopOnSignal(inner) if _installed else inner


def pipeline_settings(pipeline: Any) -> None:
    """dlt must not install its own handlers for normalize and load while ours are active:
    they would take the signal, and forget it when the step ends."""
    if _installed:
        pipeline.runtime_config.intercept_signals = False
