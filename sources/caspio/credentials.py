"""Caspio credentials as a dlt ``@configspec``, and the one place the base URL is derived.

Users know their account either by subdomain (``b3poa``) or by the integration URL shown as
"Token Endpoint URL" on the web services profile (``https://c1abc123.caspio.com``); both are
accepted and normalised to ``https://<host>``. Plain http is refused except for loopback hosts
(the local emulator), so a typo can never send the client secret over the network unencrypted.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue

from .errors import CaspioConfigError
from .settings import LOOPBACK_HOSTS

ENV_PREFIX = "SOURCES__CASPIO__CREDENTIALS__"
_SUBDOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$")
# paths users paste along with the host; anything else is a mistake we name
_KNOWN_PATH_SUFFIXES = ("/integrations/rest/v3", "/rest/v2", "/oauth/token", "/swagger")


def _key(field: str) -> str:
    return f"`credentials.{field}` ({ENV_PREFIX}{field.upper()})"


def is_loopback(host: str) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1: the only hosts allowed over plain http."""
    h = host.strip("[]").lower()
    if h in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str, *, key: str = "integration_url") -> str:
    """``c1abc123.caspio.com`` / ``https://host[:port][/known/path]`` -> ``https://host[:port]``.

    Raises ``CaspioConfigError`` naming ``key`` for anything else (bad scheme, http to a remote
    host, a path that is not a Caspio endpoint).
    """
    raw = url.strip()
    if not raw:
        raise CaspioConfigError(f"Empty {_key(key)}: set it to https://<your host>.caspio.com")
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError as ex:
        raise CaspioConfigError(f"Invalid {_key(key)} {url!r}: {ex}") from None
    if not host or not _HOST.match(parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0] or "x"):
        raise CaspioConfigError(
            f"Invalid {_key(key)} {url!r}: expected a host such as c1abc123.caspio.com"
        )
    if parts.username or parts.password:
        raise CaspioConfigError(
            f"Invalid {_key(key)}: do not put credentials in the URL; "
            f"use {_key('client_id')} and {_key('client_secret')}"
        )
    if scheme not in ("https", "http"):
        raise CaspioConfigError(f"Invalid {_key(key)} {url!r}: the scheme must be https")
    if scheme == "http" and not is_loopback(host):
        raise CaspioConfigError(
            f"Refusing plain http for {host} in {_key(key)}: Caspio is served over https only "
            "(http is allowed for a local emulator on a loopback address); use https://"
        )
    path = parts.path.rstrip("/")
    for suffix in _KNOWN_PATH_SUFFIXES:
        if path.lower().endswith(suffix):
            path = path[: -len(suffix)]
            break
    if path or parts.query or parts.fragment:
        raise CaspioConfigError(
            f"Invalid {_key(key)} {url!r}: give only the host, e.g. https://c1abc123.caspio.com"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc.lower()}"


def base_url_from(subdomain: str | None, integration_url: str | None) -> str:
    """Derives the base URL from whichever of ``subdomain`` / ``integration_url`` is set."""
    from_url = normalize_base_url(integration_url) if integration_url else None
    from_sub: str | None = None
    if subdomain:
        sub = subdomain.strip()
        if "." in sub or "/" in sub:
            from_sub = normalize_base_url(sub, key="subdomain")
        elif _SUBDOMAIN.match(sub):
            from_sub = f"https://{sub.lower()}.caspio.com"
        else:
            raise CaspioConfigError(
                f"Invalid {_key('subdomain')} {subdomain!r}: expected the part before "
                ".caspio.com, e.g. b3poa"
            )
    if from_url and from_sub and from_url != from_sub:
        raise CaspioConfigError(
            f"{_key('subdomain')} and {_key('integration_url')} name different hosts "
            f"({from_sub} vs {from_url}); set only one of them"
        )
    url = from_url or from_sub
    if not url:
        raise CaspioConfigError(
            f"Missing Caspio account: set {_key('integration_url')} (e.g. "
            f"https://c1abc123.caspio.com) or {_key('subdomain')}"
        )
    return url


@configspec
class CaspioCredentials(CredentialsConfiguration):
    """Client credentials of a Caspio web services profile plus the account's host.

    ``client_id`` and ``client_secret`` are secret values: dlt only reads them from secret
    providers (``secrets.toml``, environment). ``repr``/``str`` never show them.
    """

    client_id: TSecretStrValue = None  # type: ignore[assignment]
    client_secret: TSecretStrValue = None  # type: ignore[assignment]
    subdomain: str | None = None
    integration_url: str | None = None

    def on_resolved(self) -> None:
        """Fails at config time, with the env var to set, rather than at the first call."""
        self.validate()

    def validate(self) -> None:
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CaspioConfigError(
                    f"Missing {_key(name)}: copy it from Caspio > Account > Access Permissions "
                    "> Web Services Profile into .dlt/secrets.toml or the environment"
                )
        _ = self.base_url

    @property
    def base_url(self) -> str:
        """``https://<host>``: the integration URL without any path."""
        return base_url_from(self.subdomain, self.integration_url)

    def __str__(self) -> str:
        try:
            where = self.base_url
        except CaspioConfigError:
            where = "<invalid url>"
        return f"CaspioCredentials(base_url={where!r}, client_id=***, client_secret=***)"

    def __repr__(self) -> str:
        return self.__str__()
