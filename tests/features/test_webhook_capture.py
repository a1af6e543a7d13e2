"""Webhook change capture end to end: the emulator's webhook POSTs to a real listener on
loopback, the listener journals, the next `run` applies the deletes in DuckDB and PostgreSQL.

Every test works in its own directory (the journal's default place) with its own token cache
(where `webhooks install` keeps the secret), like a scheduled job would."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pipelines.caspio_pipeline import build_pipeline, run_sync
from pipelines.listener import build_receiver, serve
from pipelines.plan import run_plan
from pipelines.reconcile import reconcile
from pipelines.setup import source_settings
from pipelines.webhooks import load_record, run_webhooks, secret_path
from sources.caspio import ChangeJournal
from sources.caspio.deletes import DELETED_AT_COLUMN
from tests.helpers import (
    CONTACTS_AND_NOTES,
    api_delete,
    client_for,
    destination_for,
    read_rows,
    use_emulator_credentials,
)

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "webhooks_test"
JOURNAL = ".caspio/webhook_journal.jsonl"
BASE = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).replace(tzinfo=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Listener:
    """`caspio-sync listen`'s receiver and server, in this process, on a loopback port."""

    def __init__(self, emu: Any, port: int) -> None:
        host = urlsplit(emu.base_url).netloc
        self.receiver = build_receiver(source_settings(), host, None)
        self.server = serve(self.receiver, "127.0.0.1", port)
        self.url = f"http://127.0.0.1:{port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, payload: Any, raw: bytes | None = None) -> requests.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        return requests.post(self.url, data=body, timeout=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def account(caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The Contacts (incremental) and Notes (replaced) account, with quick redeliveries."""
    emu = caspio_emulator_factory(
        dataset=CONTACTS_AND_NOTES,
        webhook_retry_seconds=[0.05] * 20,
        webhook_timeout=5.0,
        clock=BASE,  # stamps a day back: every cursor mark is what the rows say, not capped
    )
    use_emulator_credentials(monkeypatch, emu)
    monkeypatch.setenv("SOURCES__CASPIO__TOKEN_CACHE_DIR", str(tmp_path / "tokens"))
    monkeypatch.delenv("SOURCES__CASPIO__TABLE_OPTIONS", raising=False)
    monkeypatch.delenv("SOURCES__CASPIO__WEBHOOK_JOURNAL", raising=False)
    monkeypatch.chdir(tmp_path)
    return emu


@pytest.fixture
def listener(account: Any) -> Iterator[Listener]:
    """`webhooks install` pointing at a loopback port, then a listener on that port."""
    port = free_port()
    run_webhooks("install", f"http://127.0.0.1:{port}/hook")
    served = Listener(account, port)
    yield served
    served.close()


def sync(destination: tuple[Any, str], tmp_path: Path) -> Any:
    dest, dataset = destination
    return run_sync(
        destination=dest,
        dataset_name=dataset,
        pipeline_name=PIPELINE,
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def pipeline_of(destination: tuple[Any, str], tmp_path: Path) -> Any:
    dest, dataset = destination
    return build_pipeline(dest, dataset, PIPELINE, pipelines_dir=str(tmp_path / "pipelines"))


def journal_ids(path: Path | str = JOURNAL) -> list[str]:
    return [e["messageId"] for e in ChangeJournal(path).read()]


def flush(emu: Any) -> None:
    assert emu.flush_webhooks(timeout=60), "webhook deliveries still pending"


def secret_of(emu: Any) -> str:
    record = load_record(secret_path(source_settings(), urlsplit(emu.base_url).netloc))
    assert record is not None
    return str(record["secret"])


def event(
    secret: str | None, etype: str, pk: int, date: str, table: str = "Contacts"
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventId": "ev",
        "messageId": str(uuid.uuid4()),
        "webhookId": "wh",
        "callId": str(uuid.uuid4()),
        "accountId": "acct",
        "eventDate": date,
        "eventType": etype,
        "objectName": table,
        "data": [{"PK_ID": pk, "Name": f"contact {pk}", "Score": pk}],
    }
    if secret is not None:
        payload["secret"] = secret
    return payload


def test_api_deletes_leave_with_the_next_run_without_a_key_scan(
    account: Any, listener: Listener, destination: tuple[Any, str], tmp_path: Path
) -> None:
    sync(destination, tmp_path)
    pipeline = pipeline_of(destination, tmp_path)
    before = {t: read_rows(pipeline, t) for t in ("contacts", "notes")}
    assert api_delete(account, "Contacts", "PK_ID IN (1, 7, 30)") == 3
    assert api_delete(account, "Notes", "PK_ID = 2") == 1
    flush(account)
    delivered = {d.message_id for d in account.webhook_deliveries() if d.status == 200}
    assert len(delivered) == 4 and set(journal_ids()) == delivered
    dest, dataset = destination
    planned = run_plan(
        destination=dest,
        dataset_name=dataset,
        pipeline_name=PIPELINE,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    # Contacts (30 rows) and Notes (12): one key-scan call each that the run does not make
    assert "deletes: from webhook journal (4 events), saves ~2 key-scan calls/run" in (
        planned.summary()
    )

    account.reset_log()
    calls_before = account.calls
    report = sync(destination, tmp_path)
    spent = account.calls - calls_before
    records = [e for e in account.log if e.path.endswith("/records")]
    # no key scan: one records call per object, and nothing selects bare PK_IDs
    selects = [parse_qs(e.query).get("q.select", [""])[0] for e in records]
    assert len(records) == 2 and "PK_ID" not in selects, selects
    # two listings, then per object its /fields and one page: what an unchanged run costs
    assert spent == report.api_calls == 2 + 2 * 2

    after = {t: read_rows(pipeline, t) for t in ("contacts", "notes")}
    gone = {"contacts": {1, 7, 30}, "notes": {2}}
    for table, rows in before.items():
        expected = [r for r in rows if r["pk_id"] not in gone[table]]
        got = [{k: v for k, v in r.items() if k != DELETED_AT_COLUMN} for r in after[table]]
        assert got == expected, table
    # trimmed once the load committed; a late redelivery of a trimmed event is a no-op
    assert journal_ids() == []
    late = next(d.payload for d in account.webhook_deliveries() if d.status == 200)
    again = listener.post(late)
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert journal_ids() == []


def test_mark_mode_stamps_deleted_rows_and_keeps_their_values(
    account: Any,
    listener: Listener,
    destination: tuple[Any, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__CASPIO__TABLE_OPTIONS", '{"Contacts": {"deletes": "mark"}}')
    sync(destination, tmp_path)
    pipeline = pipeline_of(destination, tmp_path)
    before = read_rows(pipeline, "contacts")
    assert api_delete(account, "Contacts", "PK_ID IN (2, 3)") == 2
    flush(account)
    sync(destination, tmp_path)

    after = read_rows(pipeline, "contacts")
    assert len(after) == 30
    for row, old in zip(after, before, strict=True):
        marked = row.pop(DELETED_AT_COLUMN)
        assert (marked is not None) == (row["pk_id"] in (2, 3)), row
        assert row == old
    assert journal_ids() == []


def test_forged_oversized_malformed_and_repeated_deliveries(
    account: Any, listener: Listener, tmp_path: Path
) -> None:
    destination = (destination_for("duckdb", tmp_path), "caspio")
    sync(destination, tmp_path)
    secret = secret_of(account)
    date = "2030-01-01T00:00:00.000"
    for forged in (
        event("wrong", "table.recordDelete", 5, date),
        event(None, "table.recordDelete", 5, date),
    ):
        assert listener.post(forged).status_code == 401
    assert listener.post(None, raw=b'{"secret": ').status_code == 400
    assert listener.post(event(secret, "table.recordDelete", 5, date, "Nope")).status_code == 422
    assert listener.post(event(secret, "table.recordPurge", 5, date)).status_code == 422
    # a body announced over 10 MB is refused before it is read
    conn = http.client.HTTPConnection("127.0.0.1", listener.server.server_address[1], timeout=10)
    conn.putrequest("POST", "/hook")
    conn.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert journal_ids() == []
    sync(destination, tmp_path)
    assert len(read_rows(pipeline_of(destination, tmp_path), "contacts")) == 30

    real = event(secret, "table.recordDelete", 6, date)
    assert listener.post(real).json()["result"] == "journaled"
    assert listener.post(real).json()["result"] == "duplicate"
    text = Path(JOURNAL).read_text()
    assert journal_ids() == [real["messageId"]]
    assert secret not in text and "contact 6" not in text  # keys only, never the secret
    assert json.loads(text)["keys"] == [{"PK_ID": 6}]


def test_a_key_whose_last_event_is_not_a_delete_is_kept(
    account: Any, listener: Listener, tmp_path: Path
) -> None:
    destination = (destination_for("duckdb", tmp_path), "caspio")
    sync(destination, tmp_path)
    # move the cursor mark past the rows' common stamp, so the next run reads only row 6
    account.set_clock(BASE + dt.timedelta(hours=1))
    account.update("Contacts", "PK_ID = 10", {"Score": 100})
    sync(destination, tmp_path)
    account.set_clock(BASE + dt.timedelta(hours=2))
    secret = secret_of(account)
    # out of order: the re-insert (later eventDate) arrives before the delete
    for payload in (
        event(secret, "table.recordInsert", 4, "2030-01-01T00:00:02.000"),
        event(secret, "table.recordDelete", 4, "2030-01-01T00:00:01.000"),
        event(secret, "table.recordDelete", 9, "2030-01-01T00:00:01.000"),
        # a delete of a row this run reads again (changed since): the read wins
        event(secret, "table.recordDelete", 6, "2030-01-01T00:00:01.000"),
    ):
        assert listener.post(payload).status_code == 200
    account.update("Contacts", "PK_ID = 6", {"Score": 600})
    report = sync(destination, tmp_path)
    # only row 9 goes: no delete row for 6 joins its page row (merge keeps either at random)
    assert report.notes["Contacts"] == ["1 row(s) deleted from the webhook journal"]
    rows = {r["pk_id"]: r for r in read_rows(pipeline_of(destination, tmp_path), "contacts")}
    assert 4 in rows and 9 not in rows
    assert rows[6]["score"] == 600
    assert journal_ids() == []


def test_a_crash_between_commit_and_trim_applies_nothing_twice(
    account: Any, listener: Listener, tmp_path: Path
) -> None:
    destination = (destination_for("duckdb", tmp_path), "caspio")
    sync(destination, tmp_path)
    assert api_delete(account, "Contacts", "PK_ID IN (3, 4)") == 2
    flush(account)
    untrimmed = Path(JOURNAL).read_text()
    assert sync(destination, tmp_path).notes["Contacts"] == [
        "2 row(s) deleted from the webhook journal"
    ]
    # as if the run had died after its load committed, before it trimmed the journal
    Path(JOURNAL).write_text(untrimmed)
    again = sync(destination, tmp_path)
    assert "Contacts" not in again.notes and journal_ids() == []
    rows = read_rows(pipeline_of(destination, tmp_path), "contacts")
    assert [r["pk_id"] for r in rows] == [k for k in range(1, 31) if k not in (3, 4)]


def test_a_torn_last_line_is_cut_and_the_journal_goes_on(account: Any, tmp_path: Path) -> None:
    journal = ChangeJournal(JOURNAL)
    complete = dict.fromkeys(("eventDate", "eventType", "objectName", "receivedAt"), "x")
    journal.append(dict(complete, messageId="m1", keys=[{"PK_ID": 1}]))
    with open(JOURNAL, "ab") as f:
        f.write(b'{"messageId":"m2","eventDa')  # killed mid-write
    assert [e["messageId"] for e in journal.read(repair=True)] == ["m1"]
    journal.append(dict(complete, messageId="m3", keys=[]))
    assert journal_ids() == ["m1", "m3"]
    assert journal.trim(["m1"]) == 1 and journal_ids() == ["m3"]
    assert journal.applied_ids() == {"m1"}


def test_delete_all_fires_no_event_and_reconcile_catches_it(
    account: Any, listener: Listener, tmp_path: Path
) -> None:
    destination = (destination_for("duckdb", tmp_path), "caspio")
    sync(destination, tmp_path)
    assert account.delete_all("Contacts") == 30
    flush(account)
    assert account.webhook_deliveries() == [] and journal_ids() == []
    sync(destination, tmp_path)
    pipeline = pipeline_of(destination, tmp_path)
    assert len(read_rows(pipeline, "contacts")) == 30  # the webhook never heard of it
    report = reconcile(pipeline, client_for(account), table_options={})
    assert {t.table: t.applied for t in report.tables}["Contacts"] == 30
    assert read_rows(pipeline, "contacts") == []


def _start_listen(port: int, tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RUNTIME__DLTHUB_TELEMETRY="false")
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "listen", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    while "listening on" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        time.sleep(0.05)
    return proc


def test_sigkill_mid_delivery_loses_no_acknowledged_event(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(
        dataset=CONTACTS_AND_NOTES,
        generate={"Big": 1000},
        webhook_retry_seconds=[0.2] * 300,
        webhook_timeout=5.0,
    )
    use_emulator_credentials(monkeypatch, emu)
    monkeypatch.setenv("SOURCES__CASPIO__TOKEN_CACHE_DIR", str(tmp_path / "tokens"))
    monkeypatch.chdir(tmp_path)
    port = free_port()
    run_webhooks("install", f"http://127.0.0.1:{port}/hook", tables=["Big"])
    proc = _start_listen(port, tmp_path, tmp_path / "listen1.log")
    try:
        assert api_delete(emu, "Big", "PK_ID > 0") == 1000

        def acked() -> set[str]:
            return {d.message_id for d in emu.webhook_deliveries() if d.status == 200}

        while len(acked()) < 20:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        acknowledged = acked()
        journaled = ChangeJournal(JOURNAL).read(repair=True)
        assert acknowledged <= {e["messageId"] for e in journaled}
        assert len(acknowledged) < 1000, "every delivery ended before the kill"

        proc = _start_listen(port, tmp_path, tmp_path / "listen2.log")
        flush(emu)
        ids = journal_ids()
        assert len(ids) == len(set(ids)) == 1000
        assert {d.message_id for d in emu.webhook_deliveries()} == set(ids)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
