"""Credentials: URL derivation, HTTPS-only, clear messages, no secrets in repr, dlt config."""

from __future__ import annotations

import pytest
from dlt.common.configuration import resolve_configuration

from sources.caspio import CaspioConfigError, CaspioCredentials


@pytest.mark.parametrize(
    ("subdomain", "url", "expected"),
    [
        ("b3poa", None, "https://b3poa.caspio.com"),
        (None, "c1abc123.caspio.com", "https://c1abc123.caspio.com"),
        (None, "https://C1ABC123.caspio.com/", "https://c1abc123.caspio.com"),
        (None, "https://c1abc123.caspio.com/integrations/rest/v3", "https://c1abc123.caspio.com"),
        (None, "https://c1abc123.caspio.com/oauth/token", "https://c1abc123.caspio.com"),
        (None, "http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        (None, "http://localhost:9", "http://localhost:9"),
        ("b3poa", "https://b3poa.caspio.com", "https://b3poa.caspio.com"),
    ],
)
def test_base_url(subdomain: str | None, url: str | None, expected: str) -> None:
    c = CaspioCredentials(
        client_id="i", client_secret="s", subdomain=subdomain, integration_url=url
    )
    assert c.base_url == expected


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"integration_url": "http://c1abc123.caspio.com"}, "Refusing plain http"),
        ({"integration_url": "ftp://c1abc123.caspio.com"}, "scheme must be https"),
        ({"integration_url": "https://x.caspio.com/some/page"}, "give only the host"),
        ({"integration_url": "https://u:p@x.caspio.com"}, "do not put credentials"),
        ({"subdomain": "bad_sub!"}, "SOURCES__CASPIO__CREDENTIALS__SUBDOMAIN"),
        ({}, "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL"),
        ({"subdomain": "a", "integration_url": "https://b.caspio.com"}, "set only one"),
    ],
)
def test_bad_urls_are_one_line_errors(kwargs: dict[str, str], fragment: str) -> None:
    c = CaspioCredentials(client_id="i", client_secret="s", **kwargs)
    with pytest.raises(CaspioConfigError) as ei:
        c.validate()
    assert fragment in str(ei.value)
    assert "\n" not in str(ei.value)


def test_missing_secret_names_env_var() -> None:
    with pytest.raises(CaspioConfigError, match="SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET"):
        CaspioCredentials(client_id="i", client_secret="", subdomain="x").validate()


def test_repr_hides_secrets() -> None:
    c = CaspioCredentials(client_id="my-id-123", client_secret="s3cr3t-value", subdomain="b3poa")
    for text in (repr(c), str(c), f"{c}"):
        assert "s3cr3t-value" not in text and "my-id-123" not in text
        assert "b3poa" in text


def test_resolves_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_ID", "env-id")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__SUBDOMAIN", "b3poa")
    c = resolve_configuration(CaspioCredentials(), sections=("sources", "caspio"))
    assert c.client_id == "env-id" and c.base_url == "https://b3poa.caspio.com"


def test_resolution_refuses_http_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_ID", "env-id")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", "http://evil.example.com")
    with pytest.raises(CaspioConfigError, match="plain http"):
        resolve_configuration(CaspioCredentials(), sections=("sources", "caspio"))


def test_source_injects_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt resolves credentials for the source; a wrong URL fails before any call."""
    from sources.caspio import caspio

    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_ID", "env-id")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", "http://evil.example.com")
    with pytest.raises(Exception) as ei:
        caspio(tables=["Customers"])
    assert "plain http" in str(ei.value)
