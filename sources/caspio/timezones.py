"""Caspio ``TimeZone`` ids -> zones, and the two conversions incremental sync needs.

Caspio stamps ``TIMESTAMP`` fields in the field's own zone, named by a Windows id
(``"Pacific Standard Time"``), and sends them without an offset. Loading converts them to UTC;
the incremental filter converts the stored UTC high-water mark back to the field's local clock.
Both directions meet DST: a local time in the autumn "repeated hour" is ambiguous and one in the
spring gap does not exist. Loading picks the *earlier* instant for ambiguous times (and the
transition instant for impossible ones); the filter errs the other way (it starts early enough
that no row stamped after the mark can sort before it), because re-reading a row costs nothing
(merge on PK_ID) while missing one loses data.
"""

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import CaspioConfigError
from .windows_zones import WINDOWS_TO_IANA

UTC = dt.timezone.utc
_LOOKAHEAD = dt.timedelta(hours=3)
"""Longer than any backward clock shift (DST shifts are 30-120 minutes)."""


@lru_cache(maxsize=256)
def iana_name(caspio_zone: str | None) -> str:
    """IANA name for a Caspio/Windows zone id (an IANA name is accepted as is; none = UTC)."""
    if not caspio_zone:
        return "UTC"
    name = WINDOWS_TO_IANA.get(caspio_zone.strip(), caspio_zone.strip())
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CaspioConfigError(
            f"Unknown Caspio TimeZone {caspio_zone!r}: not a Windows or IANA zone id; "
            "install/update the `tzdata` package or report the zone id"
        ) from None
    return name


def zone(caspio_zone: str | None) -> ZoneInfo:
    return ZoneInfo(iana_name(caspio_zone))


def local_to_utc(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A naive local time in ``tz`` -> aware UTC, as the page decoder converts it: an ambiguous
    time (the repeated hour) is the earlier instant, a time the clock skipped (the spring gap)
    is the instant the gap ends."""
    earlier = value.replace(tzinfo=tz, fold=0)
    if earlier.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        # not a time this zone ever showed: both fold readings land outside the gap, and the
        # later offset's reading is the gap's end, where Arrow puts it too
        return _gap_end(value, tz)
    return earlier.astimezone(UTC)


def _gap_end(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first instant after the spring gap that contains the naive local ``value``: between
    ``value`` read with the offset after the gap and with the one before, minute by minute."""
    early = value.replace(tzinfo=tz, fold=1).utcoffset() or dt.timedelta(0)
    instant = (value - early).replace(tzinfo=UTC)
    before = instant.astimezone(tz).utcoffset()
    while instant.astimezone(tz).utcoffset() == before:
        instant += dt.timedelta(minutes=1)
    return instant


def utc_to_local_lower_bound(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The naive local time to filter ``cursor >= x`` so no row stamped at/after ``value`` is
    missed.

    Local clocks go backwards at the end of DST: a row stamped 20 minutes after ``value`` can
    carry a *smaller* local time. The lower bound uses the smallest UTC offset in force from
    ``value`` to a few hours later, which re-reads at most the repeated hour (merge dedups it).
    """
    if value.tzinfo is None:
        raise ValueError("expected an aware datetime")
    u = value.astimezone(UTC)
    off_now = u.astimezone(tz).utcoffset() or dt.timedelta(0)
    off_later = (u + _LOOKAHEAD).astimezone(tz).utcoffset() or dt.timedelta(0)
    return (u + min(off_now, off_later)).replace(tzinfo=None)
