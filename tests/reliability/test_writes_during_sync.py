"""Rows inserted, updated and deleted through the API while a sync pages the same table
(issue 5, item 3): no row skipped or duplicated; the next incremental run equals the source
(rows deleted in Caspio aside: reconciling deletes is `caspio-sync reconcile`'s job)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from .harness import ITEMS, NOTES, assert_parity, duckdb_rows, make_client, row_problems, sync


class ApiWriter:
    """Writes through the emulator's REST API (POST/PUT/DELETE), as another Caspio user would."""

    def __init__(self, emulator: Any, seed: int) -> None:
        self.url = f"{emulator.v3_url}/tables/{ITEMS}/records"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {emulator.access_token()}"
        self.session.headers["Content-Type"] = "application/json"  # Caspio: 415 without
        self.rng = random.Random(seed)
        self.inserted: list[int] = []
        self.updated: set[int] = set()
        self.deleted: set[int] = set()
        self.errors: list[str] = []

    def step(self, existing: list[int]) -> None:
        choice = self.rng.random()
        candidates = [pk for pk in existing if pk not in self.updated and pk not in self.deleted]
        if choice < 0.4:
            resp = self.session.post(
                self.url,
                params={"response": "rows"},
                json={"Name": f"written mid-sync {len(self.inserted)}", "Qty": 7},
                timeout=10,
            )
            if resp.status_code == 201:
                self.inserted.append(int(resp.json()["Result"][0]["PK_ID"]))
        elif choice < 0.75 and candidates:
            pk = self.rng.choice(candidates)
            resp = self.session.put(
                self.url, params={"q.where": f"PK_ID = {pk}"}, json={"Qty": -pk}, timeout=10
            )
            if resp.status_code == 200:
                self.updated.add(pk)
        elif candidates:
            pk = self.rng.choice(candidates)
            resp = self.session.delete(self.url, params={"q.where": f"PK_ID = {pk}"}, timeout=10)
            if resp.status_code == 200:
                self.deleted.add(pk)
        else:
            return
        if resp.status_code >= 300:
            self.errors.append(f"{resp.status_code} {resp.text[:200]}")


@pytest.mark.scenario("fault", "inserts/updates/deletes through the API while the sync pages")
@pytest.mark.parametrize("run_kind", ["first run", "incremental run"])
def test_writes_during_sync_skip_and_duplicate_nothing(
    emulator: Any, tmp_path: Path, reliability_run: int, run_kind: str, record_property: Any
) -> None:
    """While the sync pages Items 20 rows at a time over 3 threads, a writer inserts, updates
    and deletes rows through the API. After that sync: no duplicated PK_ID, every row that
    existed when it started and was not deleted is present, untouched rows are exact and
    updated rows hold their old or new values. The next run then equals Caspio (except rows
    deleted mid-sync, which may stay)."""
    if run_kind == "incremental run":
        # the table was loaded before; this run reads by (cursor, PK_ID) after changes
        sync(emulator, tmp_path, page_size=20)
        emulator.update(ITEMS, "PK_ID % 5 = 0", {"Qty": 55555})
    before = {row["PK_ID"]: row for row in emulator.table_rows(ITEMS)}
    writer = ApiWriter(emulator, seed=reliability_run)
    emulator.configure(latency_ms=15)
    stop = threading.Event()

    def write() -> None:
        deadline = time.monotonic() + 60
        while not any("/records" in e.path and e.method == "GET" for e in emulator.log):
            if stop.is_set() or time.monotonic() > deadline:
                return
            time.sleep(0.005)
        existing = sorted(before)
        for _ in range(300):
            if stop.is_set():
                return
            writer.step(existing)
            time.sleep(0.01)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        sync(emulator, tmp_path, client=make_client(emulator, max_workers=3), page_size=20)
    finally:
        stop.set()
        thread.join(timeout=10)
    emulator.configure(latency_ms=0)
    record_property("inserted", len(writer.inserted))
    record_property("updated", len(writer.updated))
    record_property("deleted", len(writer.deleted))
    assert not writer.errors, writer.errors[:3]
    assert writer.inserted and writer.updated and writer.deleted, "the writer did not overlap"

    after = {row["PK_ID"]: row for row in emulator.table_rows(ITEMS)}
    dest_rows = duckdb_rows(tmp_path / "sync.duckdb", ITEMS)
    dest: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for row in dest_rows:
        pk = int(row["pk_id"])
        if pk in dest:
            problems.append(f"duplicate PK_ID {pk}")
        dest[pk] = row
    for pk, row in before.items():
        if pk in writer.deleted:
            continue
        if pk not in dest:
            problems.append(f"PK_ID {pk} skipped (it existed when the sync started)")
            continue
        if pk in writer.updated:
            if row_problems(row, dest[pk]) and row_problems(after[pk], dest[pk]):
                problems.append(f"PK_ID {pk} holds neither its old nor its new values")
        else:
            problems += row_problems(row, dest[pk])
    unknown = set(dest) - set(before) - set(writer.inserted)
    if unknown:
        problems.append(f"rows that never existed: {sorted(unknown)[:10]}")
    assert not problems, problems[:20]

    sync(emulator, tmp_path, page_size=20)
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES], {ITEMS: writer.deleted})
