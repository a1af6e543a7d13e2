"""When a failed attempt is sent again: exponential backoff with full jitter, ``Retry-After``
honoured, bounded by a number of attempts and a give-up time.

A throttle (429) is waited out until the give-up time rather than counted against the attempts:
Caspio's window can be 300 s long, and a sync that filled it must not fail after a few short
probes. Only one caller probes a full window (``throttle.py``), so its refused probes after the
first wait at least half their step (equal jitter): jitter that spreads many callers apart
is not needed there, and each probe of a full window is billed. ``sleep``, ``clock`` and
``rng`` are seams for tests that must not depend on wall time.
"""

import dataclasses
import logging
import random
import time
from collections.abc import Callable

from .errors import CaspioUnavailableError
from .stats import CaspioStats
from .throttle import Throttle
from .transport import Retryable

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Backoff:
    """The retry policy of one client."""

    base: float
    cap: float
    max_retries: int
    host: str
    base_url: str
    stats: CaspioStats
    throttle: Throttle
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = dataclasses.field(default_factory=random.Random)

    def pause(
        self, retry: Retryable, attempt: int, deadline: float, what: str, started: float
    ) -> None:
        """Wait before attempt ``attempt + 1`` of ``what``, or raise when it may not come."""
        step = min(self.cap, self.base * (2 ** (attempt - 1)))
        delay = self.rng.uniform(step / 2 if retry.reason == "429" and attempt > 1 else 0, step)
        if retry.retry_after is not None:
            delay = max(delay, retry.retry_after)
        now = self.clock()
        out_of_attempts = attempt > self.max_retries and retry.reason != "429"
        if out_of_attempts or now + delay > deadline:
            hint = ""
            if retry.reason in ("connection", "timeout"):
                hint = (
                    f"check the Caspio subdomain / integration URL ({self.base_url}) is right "
                    "and reachable, "
                )
            raise CaspioUnavailableError(
                f"Caspio at {self.host} kept failing ({retry}) on {what}: gave up after "
                f"{attempt} attempts in {now - started:.0f} s; {hint}retry later, or raise "
                "max_retries / max_retry_seconds"
            )
        self.stats.count_retry(retry.reason, delay)
        logger.debug("%s: %s, retry %d in %.2f s", what, retry, attempt, delay)
        if retry.reason == "429":
            # every thread of this client waits, not only the one that was told
            self.throttle.throttled(delay)
        self.sleep(delay)
