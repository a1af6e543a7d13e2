"""`caspio-sync webhooks install | status | remove`: the account's change-capture webhook.

One outgoing webhook per account, recognised by its name (``WEBHOOK_NAME``), subscribed to the
delete events (and, if asked, inserts and updates) of the selected tables from every event
source, the REST API included: a delete made by any app or page must reach the journal. Its
``Secret`` (shown by Caspio once, in the creation answer) is kept in a 0600 file beside the
token cache, keyed by account host, and never printed; ``caspio-sync listen`` reads it from
there. ``install`` is idempotent: it compares what exists with what is wanted and makes only
the calls that close the gap (none when up to date).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dlt.pipeline.pipeline import Pipeline

from sources.caspio import (
    SOURCE_NAME,
    CaspioClient,
    CaspioConfigError,
    CaspioSourceConfiguration,
    Catalog,
    ChangeJournal,
    TokenCache,
    applied_message_ids,
    scan_cost,
    select_objects,
)

from .setup import make_client, source_settings

WEBHOOK_NAME = "caspio-dlt"
WEBHOOK_DESCRIPTION = "caspio-dlt change capture: deletes for caspio-sync run (do not edit)"
EVENT_KINDS = {
    "delete": "table.recordDelete",
    "insert": "table.recordInsert",
    "update": "table.recordUpdate",
}
EVENT_SOURCES = (
    "Datasheet",
    "DataPages",
    "DataParts",
    "Extensions",
    "RESTAPIs",
    "Tasks",
    "TriggeredActions",
)
"""Every source Caspio names (``RESTAPIs``: the REST API's value in the OpenAPI document):
leaving one out would miss the deletes made that way."""
ROOT = "/outgoingWebhooks"


# ---------------------------------------------------------------- the secret file


def secret_path(settings: CaspioSourceConfiguration, host: str) -> Path:
    """The account's webhook file, in the token cache's directory (0700)."""
    digest = hashlib.sha256(f"webhook\n{host.lower()}".encode()).hexdigest()
    return TokenCache(settings.token_cache_dir).directory / f"webhook-{digest}.json"


def save_record(path: Path, record: dict[str, Any]) -> None:
    """Write the webhook record (its secret included) atomically, readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_record(path: Path) -> dict[str, Any] | None:
    """The webhook record, or ``None``; refused when others may read it (like the tokens)."""
    if not path.exists():
        return None
    st = path.stat()
    if os.name != "nt" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CaspioConfigError(
            f"webhook secret file {path} is accessible by group/others (mode "
            f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- install / status / remove


@dataclasses.dataclass
class WebhookReport:
    """What a webhooks command found or changed (never the secret)."""

    host: str
    webhook_id: str | None
    url: str | None
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    """(event type, table, status)."""
    changes: list[str] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    api_calls: int = 0

    def summary(self) -> str:
        if self.webhook_id is None:
            head = f"no {WEBHOOK_NAME} webhook on {self.host}"
        else:
            head = f"webhook {WEBHOOK_NAME} ({self.webhook_id}) on {self.host} -> {self.url}"
        lines = [head]
        lines += [f"  {etype:<20} {table}  {status}" for etype, table, status in self.events]
        if self.counts:
            lines.append(
                "  deliveries: " + ", ".join(f"{k.lower()} {v:,}" for k, v in self.counts.items())
            )
        elif self.webhook_id is not None:
            lines.append("  deliveries: Caspio reported no delivery counts")
        lines += [f"  {c}" for c in self.changes]
        lines.append(f"Caspio API calls: {self.api_calls:,}")
        return "\n".join(lines)


def _find(client: CaspioClient) -> dict[str, Any] | None:
    hooks = client.request("GET", ROOT, call="metadata").data or []
    return next((h for h in hooks if h.get("Name") == WEBHOOK_NAME), None)


def _events(client: CaspioClient, hook_id: str) -> list[dict[str, Any]]:
    return list(client.request("GET", f"{ROOT}/{hook_id}/events", call="metadata").data or [])


def event_types(kinds: Sequence[str] | None) -> list[str]:
    """``--events delete,insert`` -> Caspio's event types (delete is always included)."""
    names = {"delete"}
    for item in kinds or []:
        names.update(p.strip().lower() for p in item.split(",") if p.strip())
    unknown = sorted(names - set(EVENT_KINDS))
    if unknown:
        raise CaspioConfigError(
            f"--events: unknown {', '.join(unknown)}; choose from delete, insert, update"
        )
    return [EVENT_KINDS[k] for k in ("delete", "insert", "update") if k in names]


def _event_body(etype: str, table: str) -> dict[str, Any]:
    return {
        "EventType": etype,
        "ObjectName": table,
        "EventSources": list(EVENT_SOURCES),
        "Enabled": True,
    }


def _up_to_date(event: dict[str, Any]) -> bool:
    sources = {s.lower() for s in event.get("EventSources") or []}
    active = str(event.get("Status") or "").lower() in ("active", "enabled")
    return active and (not sources or sources >= {s.lower() for s in EVENT_SOURCES})


def install(
    client: CaspioClient,
    settings: CaspioSourceConfiguration,
    url: str,
    kinds: Sequence[str] | None = None,
) -> WebhookReport:
    """Create or bring up to date the account's webhook: ``url``, the wanted events on the
    selected tables, every event source; store its secret (0600)."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise CaspioConfigError(f"--url must be an http(s) URL, got {url!r}")
    before = client.stats.snapshot()["calls"]
    wanted_types = event_types(kinds)
    tables = [n for n, _ in select_objects(Catalog(client, include_views=False), settings.tables)]
    path = secret_path(settings, client.host)
    record = load_record(path)
    changes: list[str] = []
    fresh = False
    hook = _find(client)
    if hook is not None and (record is None or record.get("webhookId") != hook.get("Id")):
        # Caspio shows a secret only when the webhook is created: without ours, start again
        client.request("DELETE", f"{ROOT}/{hook['Id']}", call="metadata")
        changes.append("recreated the webhook: its secret was not stored on this machine")
        hook = None
    if hook is None:
        body = {"Name": WEBHOOK_NAME, "Description": WEBHOOK_DESCRIPTION, "OutgoingUrls": [url]}
        created = client.request("POST", ROOT, json=body, call="metadata").data
        record = {"host": client.host, "webhookId": created["Id"], "secret": created["Secret"]}
        hook = {"Id": created["Id"], "OutgoingUrls": [url]}
        changes.append("created the webhook")
        fresh = True
    elif list(hook.get("OutgoingUrls") or []) != [url]:
        client.request("PUT", f"{ROOT}/{hook['Id']}", json={"OutgoingUrls": [url]}, call="metadata")
        changes.append(f"URL changed to {url}")
    assert record is not None
    hook_id = str(hook["Id"])
    existing = [] if fresh else _events(client, hook_id)
    want = {(t, n.lower()): n for t in wanted_types for n in tables}
    have: set[tuple[str, str]] = set()
    for ev in existing:
        key = (str(ev.get("Type")), str(ev.get("ObjectName") or "").lower())
        if key not in want or key in have:
            client.request("DELETE", f"{ROOT}/{hook_id}/events/{ev['Id']}", call="metadata")
            changes.append(f"removed {key[0]} on {ev.get('ObjectName')}")
            continue
        have.add(key)
        if not _up_to_date(ev):
            body = _event_body(key[0], want[key])
            client.request("PUT", f"{ROOT}/{hook_id}/events/{ev['Id']}", json=body, call="metadata")
            changes.append(f"updated {key[0]} on {want[key]} (every event source, enabled)")
    for key, name in want.items():
        if key not in have:
            client.request(
                "POST", f"{ROOT}/{hook_id}/events", json=_event_body(key[0], name), call="metadata"
            )
            changes.append(f"added {key[0]} on {name}")
    record.update(url=url, tables=sorted(tables), events=wanted_types)
    save_record(path, record)
    report = WebhookReport(
        client.host,
        hook_id,
        url,
        events=sorted((t, n, "active") for (t, _), n in want.items()),
        changes=changes or ["up to date: nothing changed"],
    )
    report.api_calls = client.stats.snapshot()["calls"] - before
    return report


def status(client: CaspioClient) -> WebhookReport:
    """The webhook, its URL, events and the delivery counts Caspio keeps for it."""
    before = client.stats.snapshot()["calls"]
    hook = _find(client)
    report = WebhookReport(client.host, None, None)
    if hook is not None:
        hook_id = str(hook["Id"])
        one = client.request("GET", f"{ROOT}/{hook_id}", call="metadata").data or {}
        report = WebhookReport(client.host, hook_id, (hook.get("OutgoingUrls") or [None])[0])
        report.counts = {
            k: int(one[k]) for k in ("Events", "Messages", "Calls", "Errors") if k in one
        }
        report.events = sorted(
            (str(ev.get("Type")), str(ev.get("ObjectName")), str(ev.get("Status")))
            for ev in _events(client, hook_id)
        )
    report.api_calls = client.stats.snapshot()["calls"] - before
    return report


def remove(client: CaspioClient, settings: CaspioSourceConfiguration) -> WebhookReport:
    """Delete the webhook (its events go with it) and its secret file."""
    before = client.stats.snapshot()["calls"]
    hook = _find(client)
    report = WebhookReport(client.host, None, None)
    if hook is not None:
        client.request("DELETE", f"{ROOT}/{hook['Id']}", call="metadata")
        report.changes.append(f"removed webhook {hook['Id']}")
    path = secret_path(settings, client.host)
    if path.exists():
        path.unlink()
        report.changes.append("removed its secret file")
    report.api_calls = client.stats.snapshot()["calls"] - before
    return report


def run_webhooks(
    action: str,
    url: str | None = None,
    tables: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> WebhookReport:
    """The ``caspio-sync webhooks`` entry point: settings and client as every command's."""
    settings = source_settings(tables=tables)
    with make_client(settings) as client:
        if action == "install":
            if not url:
                raise CaspioConfigError("webhooks install needs --url (where Caspio will POST)")
            return install(client, settings, url, kinds)
        if action == "status":
            return status(client)
        return remove(client, settings)


def trim_journal(pipeline: Pipeline, settings: CaspioSourceConfiguration) -> int:
    """After a load committed: remove from the journal the events its state says it applied
    (only those: an event a failed load consumed stays for the next run)."""
    journal = ChangeJournal(settings.webhook_journal)
    if not journal.exists():
        return 0
    sources = pipeline.state.get("sources") or {}
    states = (sources.get(SOURCE_NAME) or {}).get("resources") or {}
    return journal.trim(applied_message_ids(states))


def plan_line(pipeline: Pipeline, settings: CaspioSourceConfiguration, tables: list[str]) -> str:
    """What ``plan`` says about deletes: from the journal (and the key-scan calls that saves
    each run, priced on the rows loaded now) or from ``reconcile`` alone."""
    journal = ChangeJournal(settings.webhook_journal)
    if not journal.exists():
        return "deletes: no webhook journal; `reconcile` finds them (one call per 1,000 keys)"
    wanted = {t.lower() for t in tables}
    pending = [e for e in journal.read() if str(e.get("objectName", "")).lower() in wanted]
    saved = 0
    naming = pipeline.default_schema.naming if pipeline.default_schema_name else None
    with pipeline.sql_client() as sql:
        for table in tables:
            name = naming.normalize_table_identifier(table) if naming else table.lower()
            try:
                rows = sql.execute_sql(
                    f"SELECT COUNT(*) FROM {sql.make_qualified_table_name(name)}"
                )
            except Exception:  # not loaded yet: a key scan would not run either
                continue
            saved += scan_cost(int(rows[0][0]) if rows else 0)
    return (
        f"deletes: from webhook journal ({len(pending):,} events), saves ~{saved:,} key-scan "
        "calls/run (run `reconcile` weekly for what fires no event)"
    )
