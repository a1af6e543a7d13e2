"""Client unit tests replayed from vcrpy cassettes: no server needed.

- Default: replay ``cassettes/*.yaml`` (``record_mode="none"``): any request not in the cassette
  fails the test.
- ``CASPIO_RECORD_CASSETTES=1``: re-record them from a local emulator (the demo account).
- ``-m live`` with ``CASPIO_LIVE_CLIENT_ID``, ``CASPIO_LIVE_CLIENT_SECRET`` and
  ``CASPIO_LIVE_URL`` set: run the same tests against a real Caspio account, recording into
  ``cassettes/live/`` (skipped otherwise). Set ``CASPIO_LIVE_TABLE`` to a table of that account.

Cassettes are scrubbed when written: the Authorization header, the token form (client id,
secret, refresh token) and tokens in token answers never reach disk; the host is replaced by
``caspio.test`` in URIs and in bodies (error bodies name it in ``Resource``), and request ids by
a fixed placeholder. ``test_cassettes_hold_no_secrets`` fails if one ever does, and
``tests/source/test_cassette_shapes.py`` validates every recorded body against Caspio's OpenAPI
schemas and records a "live" session from an emulator under another host name
(``CASPIO_LIVE_CASSETTE_DIR`` points a live recording elsewhere than ``cassettes/live``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import vcr

from sources.caspio import CaspioClient, CaspioObjectNotFoundError
from sources.caspio.paging import KeysetReader

HERE = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("CASPIO_RECORD_CASSETTES") == "1"
LIVE_VARS = ("CASPIO_LIVE_CLIENT_ID", "CASPIO_LIVE_CLIENT_SECRET", "CASPIO_LIVE_URL")
CANONICAL_HOST = "caspio.test"
TOKEN_PLACEHOLDER = "<SCRUBBED>"
# names whose values must never be written
SECRET_FIELDS = ("client_id", "client_secret", "refresh_token", "access_token")


def _canonical_uri(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(("https", CANONICAL_HOST, parts.path, parts.query, ""))


def _scrub_request(request: Any) -> Any:
    request.uri = _canonical_uri(request.uri)
    if request.body:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        pairs = [(k, TOKEN_PLACEHOLDER if k in SECRET_FIELDS else v) for k, v in parse_qsl(body)]
        request.body = urlencode(pairs).encode()
    return request


URL = re.compile(rb"https?://[^/\"\s]+")
REQUEST_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Tokens out of token answers; in every body the account's host (error bodies name it in
    ``Resource``) and the request id; the request id header too."""
    body = response.get("body", {}).get("string", b"")
    if body and b"access_token" in body:
        data = json.loads(body)
        for key in SECRET_FIELDS:
            if key in data:
                data[key] = TOKEN_PLACEHOLDER
        body = json.dumps(data).encode()
    if body:
        body = URL.sub(b"https://" + CANONICAL_HOST.encode(), body)
        body = re.sub(
            rb'("RequestId"\s*:\s*")[^"]*"',
            b"\\g<1>" + REQUEST_ID_PLACEHOLDER.encode() + b'"',
            body,
        )
        response["body"]["string"] = body
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() == "x-caspio-request-id":
            headers[name] = [REQUEST_ID_PLACEHOLDER]
    return response


def _recorder(mode: str, directory: Path) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode=mode,
        match_on=["method", "path", "query"],
        filter_headers=["authorization", "cookie", "set-cookie"],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )


@pytest.fixture(params=["replay", pytest.param("live", marks=pytest.mark.live)])
def conversation(
    request: pytest.FixtureRequest, caspio_emulator_factory: Any, tmp_path: Path
) -> Iterator[tuple[vcr.VCR, CaspioClient, str]]:
    """(recorder, client, table name): replay, re-record from the emulator, or live."""
    # one worker: vcrpy does not record concurrent requests from worker threads reliably
    kw: dict[str, Any] = {"token_cache": False, "max_retries": 0, "max_workers": 1}
    if request.param == "live":
        if not all(os.environ.get(v) for v in LIVE_VARS):
            pytest.skip("set CASPIO_LIVE_CLIENT_ID / _SECRET / _URL to run against real Caspio")
        client = CaspioClient(
            base_url=os.environ["CASPIO_LIVE_URL"],
            client_id=os.environ["CASPIO_LIVE_CLIENT_ID"],
            client_secret=os.environ["CASPIO_LIVE_CLIENT_SECRET"],
            **kw,
        )
        yield (
            _recorder("all", Path(os.environ.get("CASPIO_LIVE_CASSETTE_DIR", HERE / "live"))),
            client,
            os.environ.get("CASPIO_LIVE_TABLE", "Customers"),
        )
    elif RECORD:
        from caspio_emulator import DEMO_DATASET

        emu = caspio_emulator_factory(dataset=DEMO_DATASET)
        client = CaspioClient(
            base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret, **kw
        )
        yield _recorder("all", HERE), client, "Customers"
    else:
        # the host is irrelevant on replay: requests are canonicalised before matching
        client = CaspioClient(
            base_url="http://127.0.0.1:9",
            client_id="replay-id",
            client_secret="replay-secret",
            **kw,
        )
        yield _recorder("none", HERE), client, "Customers"
    client.close()


def test_listing_and_fields(conversation: tuple[vcr.VCR, CaspioClient, str]) -> None:
    recorder, client, table = conversation
    with recorder.use_cassette("listing_and_fields.yaml"):
        tables = client.list_tables()
        fields = client.get_fields("tables", table)
    assert table in tables
    assert fields and all("Name" in f and "Type" in f for f in fields)
    assert "PK_ID" not in {f["Name"] for f in fields}
    assert client.stats.token_calls == 1 and client.stats.calls == 3


def test_keyset_paging(conversation: tuple[vcr.VCR, CaspioClient, str]) -> None:
    recorder, client, table = conversation
    with recorder.use_cassette("keyset_paging.yaml"):
        reader = KeysetReader(client, "tables", table, page_size=100)
        keys = [r["PK_ID"] for page in reader.pages() for r in page.rows or []]
    assert keys and len(keys) == len(set(keys))
    assert reader.total_count == len(keys)
    pages = -(-len(keys) // 100)
    assert client.stats.record_calls == pages


def test_unknown_table(conversation: tuple[vcr.VCR, CaspioClient, str]) -> None:
    recorder, client, _ = conversation
    with recorder.use_cassette("unknown_table.yaml"), pytest.raises(CaspioObjectNotFoundError):
        client.get_fields("tables", "No_Such_Table_X")
    assert client.stats.calls == 2  # token + the 404, never retried


def test_cassettes_hold_no_secrets() -> None:
    files = sorted(HERE.rglob("*.yaml"))
    assert files, "cassettes missing: record them with CASPIO_RECORD_CASSETTES=1"
    from caspio_emulator import DEMO_DATASET
    from caspio_emulator.dataset import load_dataset  # the emulator's demo credentials

    account = load_dataset(DEMO_DATASET).account
    forbidden = [account.get("client_id"), account.get("client_secret")]
    forbidden += [os.environ.get(v) for v in ("CASPIO_LIVE_CLIENT_ID", "CASPIO_LIVE_CLIENT_SECRET")]
    for path in files:
        text = path.read_text()
        assert not re.search(r"(?im)^\s*-?\s*authorization:", text), path
        assert "Bearer" not in text, path
        for value in filter(None, forbidden):
            assert value not in text, (path, "credential")
        for key in SECRET_FIELDS:
            for m in re.finditer(rf'{key}\\?"?\s*[:=]\s*\\?"?([^"&\\\s,]+)', text):
                assert m.group(1) in (TOKEN_PLACEHOLDER, "%3CSCRUBBED%3E"), (path, key)
