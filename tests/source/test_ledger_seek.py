"""Reading the call ledger from a time on reads the file's tail, not a year of lines.

The ledger file only grows; each sync copies the entries since its last copy into the
destination, and a monthly budget counts the current period. ``read_entries(path, since)``
bisects the file to where those entries begin. The oracle is the list of entries written,
filtered by time here; the file holds torn and foreign lines and entries a few seconds out of
order, as parallel processes leave it."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from sources.caspio import LedgerEntry, append_entries, read_entries
from sources.caspio import ledger as ledger_module

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _entry(i: int, when: dt.datetime) -> LedgerEntry:
    return LedgerEntry(f"{i:032x}", when, "acme.caspio.com", "run", f"T{i % 3}", "records", i)


def _written(path: Path, count: int, seed: int) -> list[LedgerEntry]:
    """``count`` entries 5 s apart, each up to 5 s early or late (so some out of order),
    appended in batches with torn and foreign lines between some; the entries in file order."""
    rng = random.Random(seed)
    entries = [
        _entry(i, START + dt.timedelta(seconds=5 * i + rng.uniform(-5, 5))) for i in range(count)
    ]
    at = 0
    while at < count:
        batch = entries[at : at + rng.randint(1, 7)]
        append_entries(path, batch)
        at += len(batch)
        if rng.random() < 0.2:
            with path.open("a") as f:
                f.write(rng.choice(['{"id": "torn", "cou', "not json\n", "\n", '{"id": 1}\n']))
    return entries


@pytest.mark.parametrize("seed", range(5))
def test_entries_from_a_time_on_are_those_written_from_then_on(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "ledger.jsonl"
    written = _written(path, 300, seed)
    times = sorted(e.time for e in written)
    probes = [START - dt.timedelta(days=1), times[-1] + dt.timedelta(seconds=1)]
    for when in times[::7] + times[-3:]:
        probes += [when, when - dt.timedelta(microseconds=1), when + dt.timedelta(seconds=3)]
    for since in probes:
        expected = [e for e in written if e.time >= since]
        assert read_entries(path, since) == expected, since
    assert read_entries(path) == written


def test_a_large_ledger_is_read_from_where_the_entries_begin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.jsonl"
    old = [_entry(i, START + dt.timedelta(minutes=i)) for i in range(30_000)]
    append_entries(path, old)
    recent = [_entry(i, START + dt.timedelta(days=400, minutes=i)) for i in range(10)]
    append_entries(path, recent)
    parsed: list[bytes] = []
    parse = ledger_module._parse_line

    def counting(line: bytes) -> LedgerEntry | None:
        parsed.append(line)
        return parse(line)

    monkeypatch.setattr(ledger_module, "_parse_line", counting)
    assert read_entries(path, START + dt.timedelta(days=400)) == recent
    assert len(parsed) < 200, f"{len(parsed)} lines parsed to find 10 entries"


def test_a_missing_ledger_has_no_entries(tmp_path: Path) -> None:
    assert read_entries(tmp_path / "none.jsonl", START) == []
