"""The hand-written zone table of ``tests/zone_oracle.py`` agrees with ``zoneinfo``, and the
oracle's gap and fold answers are the documented ones (checked by hand-computed instants)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.zone_oracle import TRANSITIONS, UTC, expected_utc, fold_times, gap_times

SECOND = dt.timedelta(seconds=1)


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_hand_table_matches_zoneinfo(name: str) -> None:
    tz = ZoneInfo(name)
    for instant, before, after in TRANSITIONS[name]:
        assert (instant - SECOND).astimezone(tz).utcoffset() == before, (name, instant)
        assert instant.astimezone(tz).utcoffset() == after, (name, instant)


def test_oracle_answers_by_hand() -> None:
    pst = "Pacific Standard Time"
    assert expected_utc(dt.datetime(2024, 1, 15, 12), pst) == dt.datetime(
        2024, 1, 15, 20, tzinfo=UTC
    )
    assert expected_utc(dt.datetime(2024, 7, 15, 12), pst) == dt.datetime(
        2024, 7, 15, 19, tzinfo=UTC
    )
    # the spring gap: 02:30 does not exist -> the transition instant, 10:00 UTC
    assert expected_utc(dt.datetime(2024, 3, 10, 2, 30), pst) == dt.datetime(
        2024, 3, 10, 10, tzinfo=UTC
    )
    # the autumn fold: 01:30 happens at 08:30 and 09:30 UTC -> the earlier
    assert expected_utc(dt.datetime(2024, 11, 3, 1, 30), pst) == dt.datetime(
        2024, 11, 3, 8, 30, tzinfo=UTC
    )
    assert expected_utc(dt.datetime(2024, 10, 27, 2, 30), "Central European Standard Time") == (
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    )
    assert expected_utc(dt.datetime(2024, 5, 1), "UTC") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert len(gap_times(pst)) == 3 and len(fold_times(pst)) == 3
