"""TIMESTAMPs in non-UTC zones across DST gaps and folds load as the documented instants.

Expected values come from ``tests/zone_oracle.py`` (``zoneinfo`` and a hand-written table),
never from the connector's own zone map or conversions. Rows carry stamps in the spring gap,
in the autumn fold (both occurrences, stamped by the emulator's clock), and ordinary ones, in
three zones on both sides of the equator, and go through the full sync into DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tests.zone_oracle import UTC, expected_utc, fold_times, gap_times

from .test_pipeline import make_pipeline, run

ZONES = {
    "LA": "Pacific Standard Time",
    "Warsaw": "Central European Standard Time",
    "Sydney": "AUS Eastern Standard Time",
}
ORDINARY = [dt.datetime(2024, 1, 15, 12), dt.datetime(2024, 7, 15, 12, 0, 1)]


def _dataset() -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"Name": "Label", "Type": "STRING"}]
    fields += [
        {"Name": f"At_{key}", "Type": "TIMESTAMP", "TimeZone": zone} for key, zone in ZONES.items()
    ]
    rows: list[dict[str, Any]] = []
    for key, zone in ZONES.items():
        for kind, values in (
            ("gap", gap_times(zone)),
            ("fold", fold_times(zone)),
            ("ordinary", ORDINARY),
        ):
            rows += [{"Label": f"{key} {kind}", f"At_{key}": v.isoformat()} for v in values]
    return {"tables": {"Stamps": {"fields": fields, "rows": rows}}}


def test_gaps_and_folds_load_as_the_documented_instants(
    caspio_emulator_factory: Callable[..., Any],
    make_client: Callable[..., Any],
    tmp_path: Path,
) -> None:
    emu = caspio_emulator_factory(dataset=_dataset())
    run(make_pipeline(tmp_path), emu, make_client(emu), tables=["Stamps"])
    wire = {row["PK_ID"]: row for row in emu.table_rows("Stamps")}
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f"at_{key.lower()}" for key in ZONES)
    loaded = {
        r[0]: r[1:] for r in con.execute(f"SELECT pk_id, {cols} FROM caspio.stamps").fetchall()
    }
    con.close()
    assert set(loaded) == set(wire)
    checked = {"gap": 0, "fold": 0, "ordinary": 0}
    for pk, row in wire.items():
        for (key, zone), got in zip(ZONES.items(), loaded[pk], strict=True):
            value = row[f"At_{key}"]
            if value is None:
                assert got is None
                continue
            want = expected_utc(dt.datetime.fromisoformat(value), zone)
            assert isinstance(got, dt.datetime) and got.astimezone(UTC) == want, (
                row["Label"],
                value,
                got,
                want,
            )
            checked[row["Label"].split()[1]] += 1
    assert checked == {"gap": 9, "fold": 9, "ordinary": 6}, checked


def test_both_occurrences_of_a_folded_hour_stamp_the_same_local_time(
    caspio_emulator_factory: Callable[..., Any],
    make_client: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Caspio's stamp carries no offset: 08:30 and 09:30 UTC both read 01:30 in Los Angeles on
    3 Nov 2024. The load must give the earlier instant for both (documented; the later one is
    lost on the wire, not by the connector)."""
    fields = [
        {"Name": "N", "Type": "INTEGER"},
        {"Name": "Stamp", "Type": "TIMESTAMP", "OnInsert": True, "TimeZone": ZONES["LA"]},
    ]
    emu = caspio_emulator_factory(dataset={"tables": {"T": {"fields": fields, "rows": []}}})
    for n, instant in enumerate(
        (
            dt.datetime(2024, 11, 3, 8, 30),
            dt.datetime(2024, 11, 3, 9, 30),
            dt.datetime(2024, 11, 3, 10, 30),
        )
    ):
        emu.set_clock(instant)
        emu.insert("T", {"N": n})
    wire = [row["Stamp"] for row in sorted(emu.table_rows("T"), key=lambda r: r["N"])]
    assert wire == ["2024-11-03T01:30:00", "2024-11-03T01:30:00", "2024-11-03T02:30:00"]
    run(make_pipeline(tmp_path), emu, make_client(emu), tables=["T"])
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    got = [
        r[0].astimezone(UTC)
        for r in con.execute("SELECT stamp FROM caspio.t ORDER BY n").fetchall()
    ]
    con.close()
    first = dt.datetime(2024, 11, 3, 8, 30, tzinfo=UTC)
    assert got == [first, first, dt.datetime(2024, 11, 3, 10, 30, tzinfo=UTC)]
