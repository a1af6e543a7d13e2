"""`caspio-sync listen`: receive Caspio's webhook deliveries into the change journal.

Per POST, in this order: the path must be the installed URL's (404); a body over 10 MB is
refused from its Content-Length before anything is read (413, Caspio's own message limit);
malformed JSON 400; a wrong or missing ``secret`` 401 (``hmac.compare_digest``: constant time),
and nothing is kept; an unknown event type or a table the webhook was not installed for 422.
An accepted event is appended, flushed and fsync'd to the journal *before* the 2xx answer, so a
crash (even SIGKILL) loses nothing Caspio saw acknowledged: what it did not see acknowledged,
it redelivers. A repeated ``messageId`` (a redelivery) is a no-op 2xx, also after a restart and
after a run trimmed the event (the journal's ``.applied`` record).

The secret comes from the file ``webhooks install`` wrote (same settings, same account host);
the journal from the ``webhook_journal`` setting that ``run`` reads too.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sources.caspio import (
    CaspioConfigError,
    CaspioSourceConfiguration,
    ChangeJournal,
    journal_event,
    validate_table_options,
)

from .setup import make_client, source_settings
from .webhooks import load_record, secret_path

MAX_BODY = 10 * 1024 * 1024
EVENT_TYPES = ("table.recordInsert", "table.recordUpdate", "table.recordDelete")

logger = logging.getLogger(__name__)


class Receiver:
    """What the handler checks against and writes to; one per listener process."""

    def __init__(
        self, journal: ChangeJournal, secret: str, path: str, key_fields: dict[str, list[str]]
    ) -> None:
        self.journal = journal
        self._secret = secret.encode()
        self.path = path
        self.key_fields = key_fields
        """Known table (lower case) -> its configured primary key fields."""
        self.lock = threading.Lock()
        events = journal.read(repair=True)  # a torn last line from a crash is cut here
        self.seen = {str(e["messageId"]) for e in events} | journal.applied_ids()

    def __repr__(self) -> str:
        return f"Receiver(path={self.path!r}, journal={str(self.journal.path)!r})"

    def secret_ok(self, given: Any) -> bool:
        if not isinstance(given, str):
            hmac.compare_digest(self._secret, b"")  # same work either way
            return False
        return hmac.compare_digest(self._secret, given.encode())

    def accept(self, payload: dict[str, Any]) -> tuple[int, str]:
        """(status, reason) for one parsed delivery whose secret was checked."""
        message_id = payload.get("messageId")
        etype = payload.get("eventType")
        table = payload.get("objectName")
        if not isinstance(message_id, str) or not message_id:
            return 422, "no messageId"
        if etype not in EVENT_TYPES:
            return 422, "unknown eventType"
        if not isinstance(table, str) or table.lower() not in self.key_fields:
            return 422, "unknown objectName (not a table the webhook was installed for)"
        if not isinstance(payload.get("data"), list):
            return 422, "no data list"
        with self.lock:
            if message_id in self.seen:
                return 200, "duplicate"
            self.journal.append(journal_event(payload, self.key_fields[table.lower()]))
            self.seen.add(message_id)
        return 200, "journaled"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "caspio-sync-listen"

        def _answer(self, status: int, reason: str) -> None:
            body = json.dumps({"status": status, "result": reason}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            if urlsplit(self.path).path != receiver.path:
                self.close_connection = True
                self._answer(404, "not the webhook path")
                return
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self.close_connection = True
                self._answer(411, "Content-Length required")
                return
            if length > MAX_BODY or length < 0:
                self.close_connection = True  # the body is never read
                self._answer(413, "body over 10 MB")
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, "malformed JSON")
                return
            if not isinstance(payload, dict):
                self._answer(400, "not a JSON object")
                return
            if not receiver.secret_ok(payload.get("secret")):
                self._answer(401, "wrong or missing secret")
                return
            try:
                status, reason = receiver.accept(payload)
            except OSError as exc:  # the journal could not be written: no 2xx, Caspio retries
                logger.error("journal write failed: %s", exc)
                status, reason = 503, "journal not writable"
            self._answer(status, reason)

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._answer(405, "POST only")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler


def build_receiver(settings: CaspioSourceConfiguration, host: str, path: str | None) -> Receiver:
    """The receiver of the account ``host``'s webhook, from the record ``install`` wrote."""
    record_path = secret_path(settings, host)
    record = load_record(record_path)
    if record is None or not record.get("secret"):
        raise CaspioConfigError(
            f"no webhook secret for {host} in {record_path}: run `caspio-sync webhooks install "
            "--url URL` first (with the same settings)"
        )
    options = validate_table_options(settings.table_options)
    keys: dict[str, list[str]] = {}
    for table in record.get("tables") or []:
        key = options.for_object(table).primary_key
        keys[str(table).lower()] = (
            [] if key is None else [key] if isinstance(key, str) else list(key)
        )
    url_path = urlsplit(str(record.get("url") or "")).path or "/"
    journal = ChangeJournal(settings.webhook_journal)
    return Receiver(journal, str(record["secret"]), path or url_path, keys)


def serve(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    """A bound server (not yet serving) for ``receiver``."""
    server = ThreadingHTTPServer((host, port), _handler(receiver))
    server.daemon_threads = True
    return server


def run_listen(host: str, port: int, path: str | None = None) -> int:
    """The ``caspio-sync listen`` entry point: serve until SIGINT/SIGTERM."""
    from . import interrupts

    settings = source_settings()
    with make_client(settings) as client:  # no call: only the account's host
        account = client.host
    receiver = build_receiver(settings, account, path)
    server = serve(receiver, host, port)
    interrupts.on_first_signal(lambda _: threading.Thread(target=server.shutdown).start())
    print(
        f"caspio-sync: listening on http://{host}:{server.server_address[1]}{receiver.path} "
        f"for {account}; "
        f"journal {receiver.journal.path} ({len(receiver.seen):,} messageIds known)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
