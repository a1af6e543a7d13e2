"""Fill the emulator's rate window the way an account already at its limit would have it.

A sync of a few hundred calls never fills a window of 2,000 calls per 300 s that starts empty,
so a case that must meet a binding window starts with the window full: `limit` cheap calls
(the tables listing) spread evenly over `period` seconds, ending just before the first run.
From then on one slot frees every `period / limit` seconds, the rate the window allows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .caspio_api import CaspioApi


def fill_window(
    api: CaspioApi, limit: int, period: float, progress: Callable[[str], None] = print
) -> int:
    """Spend `limit` calls evenly over `period` seconds; return the calls answered 429."""
    headers = api.auth_headers()  # the token call itself counts: it is the first slot
    step = period / limit
    started = time.monotonic()
    refused = 0
    progress(f"filling the rate window: {limit:,} calls over {period:g} s")
    for i in range(1, limit):
        delay = started + i * step - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = api.session.get(f"{api.v3}/tables", headers=headers, timeout=60)
        refused += response.status_code == 429
    return refused
