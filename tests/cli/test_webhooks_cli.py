"""`caspio-sync webhooks install | status | remove` and `listen` as a scheduled job runs them:
a child process, an isolated environment, the emulator counting every call."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from pipelines.webhooks import WEBHOOK_NAME

from .conftest import cli, emulator_env

URL = "http://127.0.0.1:18080/hook"


def _secret_file(work: Path) -> Path:
    files = list((work / "token_cache").glob("webhook-*.json"))
    assert len(files) == 1, files
    return files[0]


def _ours(emulator: Any) -> list[dict[str, Any]]:
    """Our webhook as the account lists it (a call the tests make, not the command)."""
    token = emulator.access_token()
    hooks = requests.get(
        f"{emulator.v3_url}/outgoingWebhooks",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    return [h for h in hooks if h["Name"] == WEBHOOK_NAME]


def test_install_is_idempotent_and_keeps_the_secret_private(emulator: Any, work: Path) -> None:
    env = emulator_env(emulator, work)
    first = cli(["webhooks", "install", "--url", URL], env, work)
    assert first.code == 0, first.err
    assert "created the webhook" in first.out
    assert "added table.recordDelete on Items" in first.out
    assert "added table.recordDelete on Notes" in first.out
    path = _secret_file(work)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = json.loads(path.read_text())["secret"]
    assert len(secret) >= 16 and secret not in first.out + first.err

    emulator.reset_log()
    again = cli(["webhooks", "install", "--url", URL], env, work)
    assert again.code == 0, again.err
    assert "up to date: nothing changed" in again.out
    api = [e for e in emulator.log if not e.is_token]
    # the /tables listing, the webhooks listing and the webhook's events: reads only
    assert [e.method for e in api] == ["GET", "GET", "GET"], api
    assert secret not in again.out + again.err

    emulator.reset_log()
    moved = cli(["webhooks", "install", "--url", URL + "2", "--events", "delete,insert"], env, work)
    assert moved.code == 0, moved.err
    writes = sorted(e.method for e in emulator.log if e.method != "GET")
    assert writes == ["POST", "POST", "PUT"], writes  # the URL, then two insert events
    assert "added table.recordInsert on Items" in moved.out

    status = cli(["webhooks", "status"], env, work)
    assert status.code == 0, status.err
    assert URL + "2" in status.out and "table.recordInsert" in status.out
    assert "deliveries:" in status.out and secret not in status.out + status.err

    removed = cli(["webhooks", "remove"], env, work)
    assert removed.code == 0, removed.err
    assert not path.exists() and _ours(emulator) == []


def test_listen_without_install_names_the_fix(emulator: Any, work: Path) -> None:
    env = emulator_env(emulator, work)
    done = cli(["listen", "--port", "18081"], env, work)
    assert done.code == 1
    assert len(done.err_lines) == 1 and "webhooks install" in done.err
    assert urlsplit(emulator.base_url).netloc in done.err
