"""Proxies come from the environment as requests would take them, read once per client.

The client reads ``HTTP(S)_PROXY``/``NO_PROXY`` and the CA bundle variables when it is built,
not on every call (``client._environment_settings``). These tests show a proxy from the
environment is still used, ``NO_PROXY`` still bypasses it, and a session that opted out of the
environment stays out. The CA bundle half is covered over real TLS by
``tests/reliability/test_security.py::test_untrusted_certificate_is_refused``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sources.caspio import CaspioClient

MakeClient = Callable[..., CaspioClient]

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


class _AnsweringProxy(BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself, keeping each request line (a client
    talking to a proxy sends the absolute URL: ``GET http://host:port/path``)."""

    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append(self.requestline)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json(
            {
                "access_token": "proxy-token",
                "token_type": "bearer",
                "expires_in": 600,
                "refresh_token": "cd" * 32,
            }
        )

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.requestline)
        self._json({"Result": ["AnsweredByProxy"]})

    def _json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []
    handler = type("Proxy", (_AnsweringProxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_proxy_from_the_environment_carries_every_call(
    caspio_emulator: Any,
    make_client: MakeClient,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    client = make_client(caspio_emulator, token_cache=False)
    assert client.list_tables() == ["AnsweredByProxy"]
    assert client.list_tables() == ["AnsweredByProxy"]
    assert seen == [
        f"POST {caspio_emulator.base_url}/oauth/token HTTP/1.1",
        f"GET {caspio_emulator.base_url}/integrations/rest/v3/tables HTTP/1.1",
        f"GET {caspio_emulator.base_url}/integrations/rest/v3/tables HTTP/1.1",
    ]
    assert caspio_emulator.calls == 0


def test_no_proxy_bypasses_the_proxy_for_the_host(
    caspio_emulator: Any,
    make_client: MakeClient,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    tables = make_client(caspio_emulator, token_cache=False).list_tables()
    assert "AnsweredByProxy" not in tables and tables
    assert seen == []


def test_a_session_that_ignores_the_environment_keeps_ignoring_it(
    caspio_emulator: Any,
    make_client: MakeClient,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    session = requests.Session()
    session.trust_env = False
    tables = make_client(caspio_emulator, token_cache=False, session=session).list_tables()
    assert "AnsweredByProxy" not in tables and tables
    assert seen == []


def test_the_environment_is_read_when_the_client_is_built(
    caspio_emulator: Any,
    make_client: MakeClient,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read once, on purpose: re-reading it cost about 0.13 ms of CPU per call."""
    proxy_url, seen = proxy
    client = make_client(caspio_emulator, token_cache=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    assert "AnsweredByProxy" not in client.list_tables()
    assert seen == []
    assert make_client(caspio_emulator, token_cache=False).list_tables() == ["AnsweredByProxy"]
