"""Cassettes: every recorded body fits Caspio's OpenAPI schemas, and the live-recording path
leaves no trace of the account behind.

The "live" account is an emulator started under another host name (``localhost`` rather than
the ``127.0.0.1`` other tests use), recorded through the same ``-m live`` code path
(``CASPIO_LIVE_*`` variables, ``CASPIO_LIVE_CASSETTE_DIR``) into a temporary directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sources.caspio import CaspioClient, CaspioObjectNotFoundError
from tests.openapi import validate
from tools.openapi_subset import IMPLEMENTED

from .test_cassettes import HERE, REQUEST_ID_PLACEHOLDER, _recorder

API_ROOT = "/integrations/rest"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _template(path: str) -> str | None:
    """The OpenAPI path template a recorded URI path answers to (None: not an API path)."""
    if not path.startswith(API_ROOT + "/v3/"):
        return None
    rest = path[len(API_ROOT) :]
    for template in IMPLEMENTED:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, rest):
            return template
    raise AssertionError(f"recorded call to {rest} has no schema in tests/openapi")


def _interactions(cassette: Path) -> list[dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(cassette.read_text())
    interactions: list[dict[str, Any]] = loaded["interactions"]
    return interactions


def validate_cassette(cassette: Path) -> int:
    """Validates every JSON answer of an API call; returns how many were validated."""
    checked = 0
    for interaction in _interactions(cassette):
        request, response = interaction["request"], interaction["response"]
        template = _template(urlsplit(request["uri"]).path)
        status = response["status"]["code"]
        body = response["body"]["string"]
        if template is None or not body or not 200 <= status < 300:
            continue
        validate(template, json.loads(body), request["method"].lower(), str(status))
        checked += 1
    return checked


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.yaml")))
def test_committed_cassettes_fit_caspios_schemas(name: str) -> None:
    cassette = HERE / name
    checked = validate_cassette(cassette)
    if name != "unknown_table.yaml":  # only a token and a 404
        assert checked > 0, name
    text = cassette.read_text()
    assert "127.0.0.1" not in text and "localhost" not in text, name
    assert set(UUID.findall(text)) <= {REQUEST_ID_PLACEHOLDER}, name


def test_a_live_recording_holds_no_host_request_id_or_secret(
    caspio_emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from caspio_emulator import DEMO_DATASET

    live = caspio_emulator_factory(dataset=DEMO_DATASET, host="localhost")
    assert urlsplit(live.base_url).hostname == "localhost"
    monkeypatch.setenv("CASPIO_LIVE_URL", live.base_url)
    monkeypatch.setenv("CASPIO_LIVE_CLIENT_ID", live.client_id)
    monkeypatch.setenv("CASPIO_LIVE_CLIENT_SECRET", live.client_secret)
    monkeypatch.setenv("CASPIO_LIVE_CASSETTE_DIR", str(tmp_path / "live"))
    client = CaspioClient(
        base_url=live.base_url,
        client_id=live.client_id,
        client_secret=live.client_secret,
        token_cache=False,
        max_retries=0,
        max_workers=1,
    )
    recorder = _recorder("all", tmp_path / "live")
    with recorder.use_cassette("session.yaml"):
        assert "Customers" in client.list_tables()
        client.get_fields("tables", "Customers")
        client.get_records("tables", "Customers", {"q.pageSize": 5})
        with pytest.raises(CaspioObjectNotFoundError):
            client.get_fields("tables", "No_Such_Table_X")
    client.close()
    cassette = tmp_path / "live" / "session.yaml"
    text = cassette.read_text()
    port = str(urlsplit(live.base_url).port)
    for trace in ("localhost", f":{port}", live.client_id, live.client_secret, "Bearer"):
        assert trace not in text, trace
    assert set(UUID.findall(text)) == {REQUEST_ID_PLACEHOLDER}, "a request id was recorded"
    assert "https://caspio.test/integrations/rest/v3/tables/No_Such_Table_X" in text
    assert validate_cassette(cassette) == 3
