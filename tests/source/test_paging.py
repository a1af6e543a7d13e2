"""Keyset paging: exact call counts, concurrent PK ranges, no drift under concurrent writes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest

from sources.caspio import CaspioClient
from sources.caspio.paging import KeysetReader

from .conftest import record_calls, reset_log

MakeClient = Callable[..., CaspioClient]


def read_all(client: CaspioClient, name: str, **kw: Any) -> list[dict[str, Any]]:
    reader = KeysetReader(client, "tables", name, **kw)
    return [row for page in reader.pages() for row in page.rows or []]


@pytest.mark.parametrize("rows", [0, 1, 999, 1000, 1001, 2500])
def test_exact_call_counts(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, rows: int
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"T": rows})
    client = make_client(emu)
    got = read_all(client, "T")
    # concurrent ranges hand pages on as they arrive, not in PK order
    assert sorted(r["PK_ID"] for r in got) == sorted(r["PK_ID"] for r in emu.table_rows("T"))
    assert len({r["PK_ID"] for r in got}) == rows
    assert len(record_calls(emu)) == max(1, math.ceil(rows / 1000))
    # the first call counts, the others never do
    first, *rest = record_calls(emu)
    assert "q.getPaginationInfo=true" in first.query
    assert all("getPaginationInfo" not in e.query for e in rest)


def test_big_table_reads_in_concurrent_ranges(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"Big": 12_345})
    client = make_client(emu, max_workers=4)
    got = read_all(client, "Big")
    expected = [r["PK_ID"] for r in emu.table_rows("Big")]
    assert sorted(r["PK_ID"] for r in got) == expected
    calls = record_calls(emu, "Big")
    assert len(calls) == math.ceil(12_345 / 1000) == 13
    bounded = [
        e for e in calls if "%3C%3D" in e.query or "<=" in parse_qs(e.query).get("q.where", [""])[0]
    ]
    assert len(bounded) == 12, "every page after the first is inside a bounded PK range"
    assert client.stats.record_calls == 13


def test_gaps_cost_at_most_one_extra_call_per_range(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"G": 6000})
    emu.delete("G", "PK_ID % 7 = 0 OR (PK_ID > 3000 AND PK_ID <= 3400)")
    client = make_client(emu, max_workers=4)
    got = read_all(client, "G")
    expected = [r["PK_ID"] for r in emu.table_rows("G")]
    assert sorted(r["PK_ID"] for r in got) == expected
    assert len(record_calls(emu, "G")) <= math.ceil(len(expected) / 1000) + 4 + 1


def test_sparse_filter_does_not_explode_calls(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"S": 20_000})
    client = make_client(emu, max_workers=4)
    got = read_all(client, "S", where="PK_ID % 5 = 0")
    assert sorted(r["PK_ID"] for r in got) == list(range(5, 20_001, 5))
    # 4,000 matching rows: 4 pages when dense; density estimation keeps it close to that
    assert len(record_calls(emu, "S")) <= 4 + 4 + 2


def test_inserts_and_deletes_while_paging_do_not_shift_rows(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"W": 3500})
    before = {r["PK_ID"] for r in emu.table_rows("W")}
    client = make_client(emu, max_workers=1)
    reader = KeysetReader(client, "tables", "W", page_size=500)
    seen: list[int] = []
    deleted: set[int] = set()
    for i, page in enumerate(reader.pages()):
        seen.extend(r["PK_ID"] for r in page.rows or [])
        if i == 1:
            # delete rows already read and rows not yet read; insert new rows
            emu.delete("W", "PK_ID IN (1, 2, 3, 2000, 2001, 3499)")
            deleted = {2000, 2001, 3499}
            for _ in range(5):
                emu.insert("W", {})
    assert len(seen) == len(set(seen)), "no duplicates"
    missing = (before - deleted) - set(seen)
    assert not missing, f"rows existing during the whole sync were skipped: {sorted(missing)[:10]}"
    assert not (set(seen) & deleted - {1, 2, 3})


def test_view_pages_by_string_key(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    reader = KeysetReader(client, "views", "Customer_Orders", page_size=300)
    got = [r["PK_ID"] for page in reader.pages() for r in page.rows or []]
    expected = [r["PK_ID"] for r in caspio_emulator.table_rows("Customer_Orders")]
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    calls = record_calls(caspio_emulator, "Customer_Orders")
    assert len(calls) == math.ceil(len(expected) / 300) + (1 if len(expected) % 300 == 0 else 0)
    assert "%27" in calls[-1].query  # the string key is quoted


def test_page_size_is_validated(caspio_emulator: Any, make_client: MakeClient) -> None:
    from sources.caspio import CaspioConfigError

    with pytest.raises(CaspioConfigError, match="between 5 and 1000"):
        KeysetReader(make_client(caspio_emulator), "tables", "Customers", page_size=2000)
    reset_log(caspio_emulator)


def test_a_slow_consumer_bounds_the_pages_held_and_still_gets_every_row(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    """Fetch threads send each range's next call themselves, but never hold more than two
    received pages per range for a consumer that lags (here: a slow destination)."""
    emu = caspio_emulator_factory(dataset=None, generate={"L": 12_000})
    client = make_client(emu, max_workers=3)
    reader = KeysetReader(client, "tables", "L", page_size=500)
    got: list[int] = []
    held: list[int] = []
    for i, page in enumerate(reader.pages()):
        got.extend(r["PK_ID"] for r in page.rows or [])
        if i >= 1:  # the ranged pages: let the fetch threads run ahead, then count
            time.sleep(0.05)
            taken = len(got) // 500
            held.append(len(record_calls(emu, "L")) - taken)
    assert sorted(got) == [r["PK_ID"] for r in emu.table_rows("L")]
    assert len(record_calls(emu, "L")) == 24
    # 3 ranges: at most 6 received and untaken pages, plus one call in flight per range
    assert max(held) <= 2 * 3 + 3
    assert max(held) >= 3, "the fetch threads did run ahead of the consumer"


def test_a_consumer_that_stops_early_costs_no_further_calls(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"E": 20_000})
    client = make_client(emu, max_workers=4)
    pages: Any = KeysetReader(client, "tables", "E").pages()
    next(pages)  # the counting first page
    next(pages)  # one ranged page
    pages.close()
    time.sleep(0.5)  # calls in flight when it stopped land in the log
    stopped_at = len(record_calls(emu, "E"))
    time.sleep(0.5)
    assert len(record_calls(emu, "E")) == stopped_at, "no call is sent after the consumer stops"
    assert stopped_at <= 2 + 2 * 4 + 4, "at most the buffered pages and the calls in flight"
