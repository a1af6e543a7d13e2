"""``timezones.local_to_utc``: the per-value path places local times as the page decoder does.

Expected instants are written by hand from the 2024 transitions (not computed by the code under
test): a time the clock skipped is the instant the gap ends; a repeated time, the earlier one.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sources.caspio.timezones import local_to_utc

UTC = dt.timezone.utc
CASES = [
    # zone, local time, expected UTC instant
    ("America/Los_Angeles", "2024-03-10T02:00:00", "2024-03-10T10:00:00"),  # gap 02:00-03:00
    ("America/Los_Angeles", "2024-03-10T02:30:00", "2024-03-10T10:00:00"),
    ("America/Los_Angeles", "2024-03-10T03:00:00", "2024-03-10T10:00:00"),  # gap's end
    ("America/Los_Angeles", "2024-03-10T01:59:00", "2024-03-10T09:59:00"),
    ("America/Los_Angeles", "2024-11-03T01:30:00", "2024-11-03T08:30:00"),  # fold: PDT reading
    ("Europe/Warsaw", "2024-03-31T02:15:00", "2024-03-31T01:00:00"),  # gap 02:00-03:00
    ("Europe/Warsaw", "2024-10-27T02:30:00", "2024-10-27T00:30:00"),  # fold: CEST reading
    ("Australia/Sydney", "2024-10-06T02:45:00", "2024-10-05T16:00:00"),  # gap 02:00-03:00
    ("Australia/Lord_Howe", "2024-10-06T02:15:00", "2024-10-05T15:30:00"),  # half-hour gap
    ("America/Los_Angeles", "2024-07-01T12:00:00", "2024-07-01T19:00:00"),
]


@pytest.mark.parametrize("zone,local,expected", CASES)
def test_local_times_become_the_decoders_instants(zone: str, local: str, expected: str) -> None:
    got = local_to_utc(dt.datetime.fromisoformat(local), ZoneInfo(zone))
    assert got == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)
