"""Proxies come from the environment as requests would take them, read once per client.

The client reads ``HTTP(S)_PROXY``/``NO_PROXY`` and the CA bundle variables when it is built,
not on every call (``client._environment_settings``). These tests show a proxy from the
environment is still used, ``NO_PROXY`` still bypasses it, and a session that opted out of the
environment stays out. The CA bundle half is covered over real TLS by
``tests/reliability/test_security.py::test_untrusted_certificate_is_refused``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from sources.caspio import CaspioClient
from tests.tiny_caspio import serving

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


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A forward proxy that answers every request itself (a one-table list) and keeps each
    request line: a client talking to a proxy sends the absolute URL,
    ``GET http://host:port/path``."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with serving("AnsweredByProxy") as (url, seen):
        yield url, seen


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


@pytest.mark.parametrize("opt_out", ["NO_PROXY names the host", "session.trust_env = False"])
def test_the_proxy_is_bypassed_where_the_user_said_so(
    opt_out: str,
    caspio_emulator: Any,
    make_client: MakeClient,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    session = requests.Session()
    if opt_out.startswith("NO_PROXY"):
        monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    else:
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
