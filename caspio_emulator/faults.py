"""Knobs: latency, rate limit, faults, monthly quota, tokens' lifetime, and the request log.

Everything a test or benchmark turns to make the emulator misbehave like a real, busy,
metered Caspio account lives here, behind one lock, so the HTTP layer asks a single question
per call ("what happens to this call?") and gets one decision.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("500", "503", "429", "reset", "truncate", "hang", "stale_token")
DEFAULT_RANDOM_FAULTS = ["500", "503", "429", "reset", "truncate"]
MAX_HANG_SECONDS = 120.0
# a failed webhook delivery is retried after 5, 10, 20, ... 640 s (8 redeliveries, ~21 min in
# all): Caspio documents no schedule (docs/emulator.md guess 51); tests set a short one
DEFAULT_WEBHOOK_RETRY_SECONDS = [5.0 * 2**k for k in range(8)]


@dataclass
class RequestLogEntry:
    """One API call as the emulator answered it (admin calls are not logged)."""

    method: str
    path: str
    query: str
    status: int
    is_token: bool
    fault: str | None
    request_id: str = ""
    duration_ms: float = 0.0
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Settings:
    """The run-time configurable knobs (`Emulator.configure` keys)."""

    latency_ms: float = 0.0
    rate_limit: tuple[int, float] | None = None
    fault_rate: float = 0.0
    faults: list[str] = field(default_factory=lambda: list(DEFAULT_RANDOM_FAULTS))
    token_ttl: float = 86399
    quota: int | None = None
    stale_token_400: bool = False
    retry_after: int | None = None
    hang_seconds: float = 10.0
    seed: int = 0
    # outgoing webhooks (webhooks.py): the delay before each redelivery of a failed call, and
    # how long one call may take before it counts as failed
    webhook_retry_seconds: list[float] = field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_SECONDS)
    )
    webhook_timeout: float = 10.0


def parse_rate_limit(value: Any) -> tuple[int, float] | None:
    """``(2000, 300.0)``, ``[2000, 300]``, ``"2000/300"`` or None."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, str):
        n, _, per = value.partition("/")
        return int(n), float(per or 1)
    n, per = value
    if int(n) < 1 or float(per) <= 0:
        raise ValueError("rate_limit needs a positive count and period")
    return int(n), float(per)


class Knobs:
    """Settings plus the state they act on (rate window, script, quota, log)."""

    def __init__(self, settings: Settings) -> None:
        self.lock = threading.Lock()
        self.settings = settings
        self.script: deque[str] = deque()
        self.window: deque[float] = deque()
        self.random = random.Random(settings.seed)
        self.quota_used = 0
        self.calls = 0
        self.log: list[RequestLogEntry] = []

    def configure(self, **changes: Any) -> None:
        with self.lock:
            s = self.settings
            for key, value in changes.items():
                if key == "rate_limit":
                    s.rate_limit = parse_rate_limit(value)
                    self.window.clear()
                elif key == "faults":
                    kinds = list(value or [])
                    for k in kinds:
                        check_kind(k)
                    s.faults = kinds
                elif key == "quota":
                    s.quota = None if value is None else int(value)
                    self.quota_used = 0
                elif key == "hang_seconds":
                    s.hang_seconds = max(0.0, min(float(value), MAX_HANG_SECONDS))
                elif key == "seed":
                    s.seed = int(value)
                    self.random = random.Random(s.seed)
                elif key in ("latency_ms", "fault_rate", "token_ttl"):
                    setattr(s, key, float(value))
                elif key == "stale_token_400":
                    s.stale_token_400 = bool(value)
                elif key == "retry_after":
                    s.retry_after = None if value is None else int(value)
                elif key == "webhook_retry_seconds":
                    s.webhook_retry_seconds = parse_retry_schedule(value)
                elif key == "webhook_timeout":
                    if float(value) <= 0:
                        raise ValueError("webhook_timeout must be positive")
                    s.webhook_timeout = float(value)
                else:
                    raise TypeError(f"unknown emulator setting {key!r}")
            if not 0.0 <= s.fault_rate <= 1.0:
                raise ValueError("fault_rate must be between 0 and 1")

    def script_faults(self, kinds: list[str]) -> None:
        for k in kinds:
            check_kind(k)
        with self.lock:
            self.script.extend(kinds)

    def admit(self) -> tuple[str | None, float]:
        """Count one API call and decide its fate.

        Returns (decision, latency seconds). decision is None (serve it), "quota", "throttle",
        or a fault kind. Order: quota, then rate limit, then scripted faults, then random ones.
        """
        now = time.monotonic()
        with self.lock:
            s = self.settings
            self.calls += 1
            latency = s.latency_ms / 1000.0
            if s.quota is not None:
                self.quota_used += 1
                if self.quota_used > s.quota:
                    return "quota", latency
            if s.rate_limit is not None:
                n, per = s.rate_limit
                while self.window and self.window[0] <= now - per:
                    self.window.popleft()
                if len(self.window) >= n:
                    return "throttle", latency
                self.window.append(now)
            if self.script:
                return self.script.popleft(), latency
            if s.fault_rate > 0 and s.faults and self.random.random() < s.fault_rate:
                return self.random.choice(s.faults), latency
            return None, latency

    def retry_after_seconds(self) -> int | None:
        """For a throttled call: the configured Retry-After, or when the window frees up."""
        s = self.settings
        if s.retry_after is None:
            return None
        return s.retry_after

    def record(self, entry: RequestLogEntry) -> None:
        with self.lock:
            self.log.append(entry)

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()
            self.calls = 0


def parse_retry_schedule(value: Any) -> list[float]:
    """``webhook_retry_seconds``: a list of non-negative delays (seconds), one per redelivery
    of a failed webhook call; ``[]`` (or None) means no redelivery."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError("webhook_retry_seconds is a list of seconds, e.g. [0.05, 0.1, 0.2]")
    delays = [float(v) for v in value]
    if any(d < 0 for d in delays):
        raise ValueError("webhook_retry_seconds cannot hold a negative delay")
    return delays


def check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
