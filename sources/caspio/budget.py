"""A hard cap on the API calls one run may spend, checked before every request.

Caspio bills every call, token requests and retries included, and an account's monthly quota is
shared by everything that uses it. ``--max-calls N`` must therefore stop a run *before* call
N + 1 is sent, not notice afterwards. The client asks the budget for permission immediately
before each HTTP attempt (first tries, retries, token calls alike); the budget reserves the
call under a lock, so concurrent page fetches can never overshoot together.
"""

from __future__ import annotations

import threading

from .errors import CaspioError


class CallBudgetExceeded(CaspioError):
    """The next API call would exceed the run's call budget; it was not sent."""

    def __init__(self, limit: int, spent: int, call: str, obj: str | None) -> None:
        self.limit = limit
        self.spent = spent
        what = f"{call} call for {obj!r}" if obj else f"{call} call"
        super().__init__(
            f"call budget reached: {spent} of --max-calls {limit} Caspio API calls spent, the "
            f"next ({what}) was not sent; tables finished so far are loaded and the next "
            "run "
            "resumes from there (raise --max-calls, or price a run first with `caspio-sync plan`)"
        )


class CallBudget:
    """At most ``limit`` calls, counted from the budget's creation."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a call budget must be >= 0, got {limit}")
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        with self._lock:
            return self.limit - self.spent

    def charge(self, call: str = "other", obj: str | None = None) -> None:
        """Reserve one call, or raise :class:`CallBudgetExceeded` without reserving it."""
        with self._lock:
            if self.spent >= self.limit:
                raise CallBudgetExceeded(self.limit, self.spent, call, obj)
            self.spent += 1

    def __repr__(self) -> str:
        return f"CallBudget(limit={self.limit}, spent={self.spent})"
