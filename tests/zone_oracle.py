"""What a Caspio TIMESTAMP must load as, computed without the connector's code.

The connector maps Windows zone ids with its own table and converts with its own functions
(``sources.caspio.timezones``, ``arrow``); an oracle built from them agrees with any bug in
them. Here the Windows -> IANA names are written by hand for the zones the tests use, the
conversion is ``zoneinfo`` plus a round-trip check, and the DST transitions of 2024 are a
hand-written table (itself checked against ``zoneinfo`` by ``test_zone_oracle.py``).

The documented rule (``sources/caspio/timezones.py``): a local time the clock shows twice (the
autumn fold) loads as the *earlier* instant; one the clock skips (the spring gap) loads as the
transition instant.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc

WINDOWS_TO_IANA = {
    "": "UTC",
    "UTC": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Europe Standard Time": "Europe/Berlin",
    "AUS Eastern Standard Time": "Australia/Sydney",
}
"""Hand-written, from CLDR's windowsZones.xml (territory 001)."""

H = dt.timedelta(hours=1)
TRANSITIONS: dict[str, list[tuple[dt.datetime, dt.timedelta, dt.timedelta]]] = {
    # (instant in UTC, UTC offset before, UTC offset after)
    "America/Los_Angeles": [
        (dt.datetime(2024, 3, 10, 10, tzinfo=UTC), -8 * H, -7 * H),
        (dt.datetime(2024, 11, 3, 9, tzinfo=UTC), -7 * H, -8 * H),
    ],
    "Europe/Warsaw": [
        (dt.datetime(2024, 3, 31, 1, tzinfo=UTC), 1 * H, 2 * H),
        (dt.datetime(2024, 10, 27, 1, tzinfo=UTC), 2 * H, 1 * H),
    ],
    "Europe/Berlin": [
        (dt.datetime(2024, 3, 31, 1, tzinfo=UTC), 1 * H, 2 * H),
        (dt.datetime(2024, 10, 27, 1, tzinfo=UTC), 2 * H, 1 * H),
    ],
    "Australia/Sydney": [
        (dt.datetime(2024, 4, 6, 16, tzinfo=UTC), 11 * H, 10 * H),
        (dt.datetime(2024, 10, 5, 16, tzinfo=UTC), 10 * H, 11 * H),
    ],
}
"""DST transitions of 2024 in the zones above."""


def iana(windows_id: str | None) -> str:
    return WINDOWS_TO_IANA[(windows_id or "").strip()]


def expected_utc(local: dt.datetime, windows_id: str | None) -> dt.datetime:
    """The aware UTC instant a naive Caspio stamp in ``windows_id`` must load as."""
    assert local.tzinfo is None
    name = iana(windows_id)
    tz = ZoneInfo(name)
    real = sorted(
        {
            instant
            for fold in (0, 1)
            if (instant := local.replace(tzinfo=tz, fold=fold).astimezone(UTC))
            .astimezone(tz)
            .replace(tzinfo=None)
            == local
        }
    )
    if real:
        return real[0]  # one instant, or the earlier of a fold's two
    for instant, before, after in TRANSITIONS.get(name, []):
        if after > before and instant + before <= local.replace(tzinfo=UTC) < instant + after:
            return instant  # the clock skipped this local time
    raise AssertionError(f"{local} in {name} is a gap the hand-written table does not know")


def gap_times(windows_id: str) -> list[dt.datetime]:
    """Naive local times the clock skips in 2024 (start, middle, last minute of each gap)."""
    out = []
    for instant, before, after in TRANSITIONS[iana(windows_id)]:
        if after > before:
            start = (instant + before).replace(tzinfo=None)
            out += [
                start,
                start + (after - before) / 2,
                start + (after - before) - dt.timedelta(minutes=1),
            ]
    return out


def fold_times(windows_id: str) -> list[dt.datetime]:
    """Naive local times the clock shows twice in 2024."""
    out = []
    for instant, before, after in TRANSITIONS[iana(windows_id)]:
        if after < before:
            start = (instant + after).replace(tzinfo=None)
            out += [
                start,
                start + (before - after) / 2,
                start + (before - after) - dt.timedelta(seconds=1),
            ]
    return out
