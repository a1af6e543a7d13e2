"""Turn the emulator's request log into the call counts the issue's targets are written in.

Caspio bills every call (token calls and failed calls included), so the counts come from the
server's log, never from a client's own bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .emulator_proc import LogEntry

RECORDS_RE = re.compile(r"/(tables|views)/[^/]+/records$", re.IGNORECASE)
FIELDS_RE = re.compile(r"/(tables|views)/[^/]+/fields$", re.IGNORECASE)
LISTING_RE = re.compile(r"/(tables|views)$", re.IGNORECASE)


@dataclass
class CallCounts:
    """API calls by kind, for one contender run."""

    api_calls: int = 0
    token_calls: int = 0
    record_calls: int = 0
    write_calls: int = 0
    fields_calls: int = 0
    listing_calls: int = 0
    other_calls: int = 0
    status_429: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def count_calls(entries: list[LogEntry]) -> CallCounts:
    counts = CallCounts()
    for entry in entries:
        counts.api_calls += 1
        path = entry.path.rstrip("/")
        if entry.is_token or path.endswith("/oauth/token"):
            counts.token_calls += 1
        elif RECORDS_RE.search(path):
            if entry.method.upper() == "GET":
                counts.record_calls += 1
            else:
                counts.write_calls += 1
        elif FIELDS_RE.search(path):
            counts.fields_calls += 1
        elif LISTING_RE.search(path):
            counts.listing_calls += 1
        else:
            counts.other_calls += 1
        if entry.status == 429:
            counts.status_429 += 1
        elif entry.status >= 400:
            counts.errors += 1
    return counts
