"""A user's dlt incremental (backfill windows, Airflow intervals, ``initial_value``) and
``add_limit``: pushed down to Caspio, and never costing the next plain run a row.

People rows are stamped one day of January 2024 each (``PK_ID % 28``): 50 rows a day for 1,400
rows, so a window's rows and record calls are known by hand.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from sources.caspio import CaspioClient, caspio, caspio_table
from sources.caspio.windows import window_filter
from tests.helpers import people_account

from .conftest import credentials_for, record_calls, reset_log

MakeClient = Callable[..., CaspioClient]
UTC = dt.timezone.utc
JAN_5 = dt.datetime(2024, 1, 5, tzinfo=UTC)
JAN_10 = dt.datetime(2024, 1, 10, tzinfo=UTC)


def pipeline_for(tmp_path: Path) -> Any:
    return dlt.pipeline(
        "w",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        dataset_name="caspio",
    )


def people(emu: Any, client: CaspioClient, incremental: Any = None) -> Any:
    source = caspio(credentials=credentials_for(emu), client=client, tables=["People"])
    if incremental is not None:
        source.resources[next(iter(source.resources))].apply_hints(incremental=incremental)
    return source


def loaded(tmp_path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute("select pk_id, name, updated from caspio.people order by 1").fetchall()


def in_caspio(emu: Any) -> list[tuple[Any, ...]]:
    return [
        (r["PK_ID"], r["Name"], dt.datetime.fromisoformat(r["Updated"]).replace(tzinfo=UTC))
        for r in sorted(emu.table_rows("People"), key=lambda r: r["PK_ID"])
    ]


def people_state(pipeline: Any) -> dict[str, Any]:
    for source in pipeline.state.get("sources", {}).values():
        for name, state in source.get("resources", {}).items():
            if name.lower() == "people":
                return dict(state)
    return {}


def window_rows(emu: Any, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    return [r for r in in_caspio(emu) if start <= r[2] < end]


def test_a_backfill_window_reads_its_rows_only_and_leaves_the_rest_to_plain_runs(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    window = dlt.sources.incremental("Updated", initial_value=JAN_5, end_value=JAN_10)
    reset_log(emu)
    pipeline.run(people(emu, make_client(emu), window))
    # 250 rows of five days: one record call, not the table's two
    assert len(record_calls(emu, "People")) == 1
    assert loaded(tmp_path) == window_rows(emu, JAN_5, JAN_10)
    assert "cursor" not in people_state(pipeline)

    emu.set_clock(None)
    emu.update("People", "PK_ID <= 3", {"Name": "changed"})
    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)


def test_a_window_after_plain_runs_does_not_move_their_cursor(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    pipeline.run(people(emu, make_client(emu)))
    mark = people_state(pipeline)["cursor"]
    emu.set_clock(None)
    emu.update("People", "PK_ID <= 5", {"Name": "changed"})  # stamped now: outside the window
    window = dlt.sources.incremental("Updated", initial_value=JAN_5, end_value=JAN_10)
    pipeline.run(people(emu, make_client(emu), window))
    assert people_state(pipeline)["cursor"] == mark
    assert [r[1] for r in loaded(tmp_path)[:5]] == ["P1", "P2", "P3", "P4", "P5"]

    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)


def test_an_airflow_interval_is_the_window(
    caspio_emulator_factory: Any,
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # what dlt reads when Airflow (or any scheduler) hands over the data interval
    monkeypatch.setenv("DLT_INTERVAL_START", "2024-01-05T00:00:00Z")
    monkeypatch.setenv("DLT_INTERVAL_END", "2024-01-10T00:00:00Z")
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    interval = dlt.sources.incremental(
        "Updated", initial_value=dt.datetime(2024, 1, 1, tzinfo=UTC), allow_external_schedulers=True
    )
    reset_log(emu)
    pipeline.run(people(emu, make_client(emu), interval))
    assert len(record_calls(emu, "People")) == 1
    assert loaded(tmp_path) == window_rows(emu, JAN_5, JAN_10)
    assert "cursor" not in people_state(pipeline)

    monkeypatch.delenv("DLT_INTERVAL_START")
    monkeypatch.delenv("DLT_INTERVAL_END")
    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)


def test_an_initial_value_starts_the_first_run_there_and_plain_runs_follow(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    since = dt.datetime(2024, 1, 20, tzinfo=UTC)

    def one_table(incremental: Any = None) -> Any:
        return caspio_table(
            "People",
            credentials=credentials_for(emu),
            client=make_client(emu),
            incremental=incremental,
        )

    reset_log(emu)
    pipeline.run(one_table(dlt.sources.incremental("Updated", initial_value=since)))
    assert len(record_calls(emu, "People")) == 1
    far = dt.datetime(2100, 1, 1, tzinfo=UTC)
    assert loaded(tmp_path) == window_rows(emu, since, far)
    assert people_state(pipeline)["cursor"]["value"].startswith("2024-01-28T10:00:00")

    emu.set_clock(None)
    emu.update("People", "PK_ID <= 3", {"Name": "changed"})
    reset_log(emu)
    pipeline.run(one_table())
    assert len(record_calls(emu, "People")) == 1
    assert loaded(tmp_path) == [r for r in in_caspio(emu) if r[2] >= since or r[1] == "changed"]


def test_add_limit_counts_pages_and_a_limited_run_skips_no_row(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(3500))
    pipeline = pipeline_for(tmp_path)
    reset_log(emu)
    pipeline.run(people(emu, make_client(emu)).add_limit(2))
    assert len(record_calls(emu, "People")) == 2
    assert len(loaded(tmp_path)) == 2000
    assert "cursor" not in people_state(pipeline)

    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)

    # with a mark: a limited run merges its pages and keeps the mark for the next plain run
    mark = people_state(pipeline)["cursor"]
    emu.set_clock(None)
    emu.update("People", "PK_ID <= 2500", {"Name": "changed"})
    reset_log(emu)
    pipeline.run(people(emu, make_client(emu)).add_limit(1))
    assert len(record_calls(emu, "People")) == 1
    assert people_state(pipeline)["cursor"] == mark
    assert sum(r[1] == "changed" for r in loaded(tmp_path)) == 1000

    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)


def test_table_options_offer_the_window_to_config_and_the_cli(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    options = {"People": {"initial_value": "2024-01-05T00:00:00Z", "end_value": "2024-01-10"}}
    reset_log(emu)
    source = caspio(
        credentials=credentials_for(emu),
        client=make_client(emu),
        tables=["People"],
        table_options=options,
    )
    pipeline.run(source)
    assert len(record_calls(emu, "People")) == 1
    assert loaded(tmp_path) == window_rows(emu, JAN_5, JAN_10)
    assert "cursor" not in people_state(pipeline)
    pipeline.run(people(emu, make_client(emu)))
    assert loaded(tmp_path) == in_caspio(emu)


PACIFIC_STAMP = {"Name": "Updated", "Type": "TIMESTAMP", "TimeZone": "Pacific Standard Time"}


def bound(cursor: str, **kwargs: Any) -> Any:
    inc = dlt.sources.incremental(cursor, **kwargs)
    inc.start_value = inc.initial_value  # as dlt's bind sets it on a first run
    return inc


def test_window_bounds_cover_every_local_time_of_the_utc_range() -> None:
    # 2024-11-03 09:00 UTC: Los Angeles goes from PDT (-7) to PST (-8), 01:00-02:00 repeats
    inc = bound(
        "Updated",
        initial_value=dt.datetime(2024, 11, 3, 8, 0, tzinfo=UTC),
        end_value=dt.datetime(2024, 11, 3, 10, 0, 0, 500, tzinfo=UTC),
    )
    assert window_filter(PACIFIC_STAMP, inc) == (
        "(Updated >= '2024-11-03T00:00:00') AND (Updated <= '2024-11-03T03:00:01')"
    )
    # DATE/TIME is naive: an aware bound is read in dlt's context zone (UTC), as dlt filters
    due = {"Name": "Due", "Type": "DATE/TIME"}
    plus_two = dt.timezone(dt.timedelta(hours=2))
    inc = bound("Due", initial_value=dt.datetime(2024, 5, 1, 2, 0, tzinfo=plus_two))
    assert window_filter(due, inc) == "Due >= '2024-05-01T00:00:00'"
    # integers keep dlt's open/closed ends; text fields are not pushed down
    inc = bound("Qty", initial_value=5, end_value=9, range_start="open", range_end="closed")
    assert window_filter({"Name": "Qty", "Type": "INTEGER"}, inc) == "(Qty > 5) AND (Qty <= 9)"
    assert (
        window_filter({"Name": "Code", "Type": "STRING"}, bound("Code", initial_value="a")) is None
    )


def test_a_row_stamped_ahead_of_the_servers_clock_waits_for_a_later_run_and_is_not_lost(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    """Caspio's stamps run 3 s ahead of its Date header (clock skew): an open-ended
    incremental leaves the row stamped in its future for a later run instead of starting the
    next run after it, and the run after the clock has passed the stamp loads it."""
    emu = caspio_emulator_factory(dataset=people_account(10))
    ahead = dt.datetime.now(UTC).replace(tzinfo=None, microsecond=0) + dt.timedelta(seconds=3)
    emu.set_clock(ahead)
    emu.update("People", "PK_ID = 1", {"Name": "stamped ahead"})
    emu.set_clock(None)
    pipeline = pipeline_for(tmp_path)

    def since_january() -> Any:
        return dlt.sources.incremental("Updated", initial_value=JAN_5, primary_key="PK_ID")

    pipeline.run(people(emu, make_client(emu), since_january()))
    assert 1 not in [r[0] for r in loaded(tmp_path)]  # held back: stamped after the read began
    while dt.datetime.now(UTC).replace(tzinfo=None) < ahead + dt.timedelta(seconds=3):
        time.sleep(0.2)  # past the stamp, and the source's 2 s margin behind the Date header
    pipeline.run(people(emu, make_client(emu), since_january()))
    assert loaded(tmp_path) == [r for r in in_caspio(emu) if r[2] >= JAN_5]
    assert loaded(tmp_path)[0][1] == "stamped ahead"


def test_rows_changed_on_pages_already_read_reach_the_next_run_of_an_open_incremental(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    """While an open-ended incremental pages People in PK order, row 5 (its page already
    read) and then row 1300 (its page still ahead) are updated: 1300 is read with the newer
    stamp. dlt starts the next run at the newest stamp it loaded, so row 5, stamped before
    it, would never be read again; the rows stamped since the read began wait for the next run
    instead, and that run ends equal to Caspio."""
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)

    def run() -> None:
        since = dlt.sources.incremental("Updated", initial_value=dt.datetime(2023, 1, 1))
        source = caspio(
            credentials=credentials_for(emu),
            client=make_client(emu, max_workers=1),
            tables=["People"],
            page_size=100,
        )
        source.resources[next(iter(source.resources))].apply_hints(incremental=since)
        pipeline.run(source)

    def write_behind_the_read() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(1 for e in emu.log if e.path.endswith("/records")) >= 2:  # page 1 read
                emu.update("People", "PK_ID = 5", {"Name": "changed behind the read"})
                time.sleep(1.1)  # a later stamp (the emulator stamps whole seconds)
                emu.update("People", "PK_ID = 1300", {"Name": "changed ahead of the read"})
                return
            time.sleep(0.002)

    reset_log(emu)
    emu.configure(latency_ms=150)  # 14 pages: 2 s, row 1300's page comes last
    writer = threading.Thread(target=write_behind_the_read)
    writer.start()
    run()
    writer.join()
    emu.configure(latency_ms=0)
    names = {r["PK_ID"]: r["Name"] for r in emu.table_rows("People")}
    assert names[5] == "changed behind the read" and names[1300] == "changed ahead of the read"
    newest = max(r[2] for r in in_caspio(emu))
    while dt.datetime.now(UTC) < newest + dt.timedelta(seconds=3.5):
        time.sleep(0.2)  # the next run's clock, less the source's 2 s margin, is past both
    run()
    assert loaded(tmp_path) == in_caspio(emu)
