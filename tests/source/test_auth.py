"""The shared token: one token call for many threads, replay on 401 / stale 400, 0600 cache."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sources.caspio import (
    CaspioAuthError,
    CaspioClient,
    CaspioTokenCacheError,
    reset_token_providers,
)
from sources.caspio.auth import TokenCache

from .conftest import reset_log, settled_log, token_calls

MakeClient = Callable[..., CaspioClient]


def test_threads_share_one_token(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator, max_workers=8)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            client.list_tables()
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert token_calls(caspio_emulator) == 1
    assert client.stats.token_calls == 1
    assert caspio_emulator.calls == 9 == client.stats.calls


def test_two_clients_of_one_account_share_the_token(
    caspio_emulator: Any, make_client: MakeClient
) -> None:
    make_client(caspio_emulator, token_cache=False).list_tables()
    make_client(caspio_emulator, token_cache=False).list_views()
    assert token_calls(caspio_emulator) == 1


def test_expired_token_is_renewed_once_and_request_replayed(
    caspio_emulator: Any, make_client: MakeClient
) -> None:
    client = make_client(caspio_emulator, max_workers=4)
    client.list_tables()
    grants: list[str] = []
    fetch = client._fetch_token

    def spy(form: dict[str, str], basic: bool) -> Any:
        grants.append(form["grant_type"])
        return fetch(form, basic)

    client._fetch_token = spy  # type: ignore[method-assign]
    caspio_emulator.expire_tokens()
    reset_log(caspio_emulator)
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        client.list_tables()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [e.status for e in settled_log(caspio_emulator) if not e.is_token]
    assert token_calls(caspio_emulator) == 1, "compare-and-swap: one renewal for all threads"
    assert grants == ["refresh_token"], "renewal uses the refresh token first"
    assert statuses.count(200) == 4
    assert client.stats.auth_replays == statuses.count(401) >= 1


def test_stale_token_400_is_replayed(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    client.list_tables()
    reset_log(caspio_emulator)
    caspio_emulator.script_faults(["stale_token"])
    assert "Customers" in client.list_tables()
    assert [e.status for e in settled_log(caspio_emulator) if not e.is_token] == [400, 200]
    assert token_calls(caspio_emulator) == 1
    assert client.stats.auth_replays == 1


def test_wrong_secret_is_a_clear_error(caspio_emulator: Any, token_dir: Path) -> None:
    client = CaspioClient(
        base_url=caspio_emulator.base_url,
        client_id=caspio_emulator.client_id,
        client_secret="wrong-secret-value",
        token_cache_dir=str(token_dir),
    )
    with pytest.raises(CaspioAuthError) as ei:
        client.list_tables()
    msg = str(ei.value)
    assert "invalid_client" in msg and "CLIENT_SECRET" in msg
    assert "wrong-secret-value" not in msg
    assert caspio_emulator.calls == 1, "a credentials error is not retried"


def test_token_cache_file_is_private_and_reused(
    caspio_emulator: Any, make_client: MakeClient, token_dir: Path
) -> None:
    make_client(caspio_emulator).list_tables()
    files = list(token_dir.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(token_dir.stat().st_mode) == 0o700
    assert caspio_emulator.client_id not in files[0].name
    # a new process (simulated: registry cleared) reuses the cached token: no token call
    reset_token_providers()
    reset_log(caspio_emulator)
    second = make_client(caspio_emulator)
    second.list_tables()
    second.list_views()
    assert token_calls(caspio_emulator) == 0
    assert second.stats.token_calls == 0
    assert caspio_emulator.calls == 2


def test_cached_token_is_not_reused_with_another_secret(
    caspio_emulator: Any, token_dir: Path
) -> None:
    """A wrong (or rotated) secret must fail now, not when the cached token expires."""
    good = CaspioClient(
        base_url=caspio_emulator.base_url,
        client_id=caspio_emulator.client_id,
        client_secret=caspio_emulator.client_secret,
        token_cache_dir=str(token_dir),
    )
    good.list_tables()
    good.close()
    reset_token_providers()
    reset_log(caspio_emulator)
    wrong = CaspioClient(
        base_url=caspio_emulator.base_url,
        client_id=caspio_emulator.client_id,
        client_secret="not-the-secret",
        token_cache_dir=str(token_dir),
    )
    with pytest.raises(CaspioAuthError, match="invalid_client"):
        wrong.list_tables()
    wrong.close()
    assert token_calls(caspio_emulator) == 1
    # and the right secret still finds its own cached token afterwards
    reset_token_providers()
    reset_log(caspio_emulator)
    again = CaspioClient(
        base_url=caspio_emulator.base_url,
        client_id=caspio_emulator.client_id,
        client_secret=caspio_emulator.client_secret,
        token_cache_dir=str(token_dir),
    )
    again.list_tables()
    again.close()
    assert token_calls(caspio_emulator) == 0


def test_cached_token_rejected_is_refreshed(caspio_emulator: Any, make_client: MakeClient) -> None:
    make_client(caspio_emulator).list_tables()
    reset_token_providers()
    caspio_emulator.expire_tokens()
    reset_log(caspio_emulator)
    assert make_client(caspio_emulator).list_tables()
    assert token_calls(caspio_emulator) == 1


def test_world_readable_cache_is_refused(
    caspio_emulator: Any, make_client: MakeClient, token_dir: Path
) -> None:
    make_client(caspio_emulator).list_tables()
    (path,) = token_dir.glob("*.json")
    os.chmod(path, 0o644)
    reset_token_providers()
    with pytest.raises(CaspioTokenCacheError, match="chmod 600"):
        make_client(caspio_emulator).list_tables()


def test_cache_can_be_disabled(
    caspio_emulator: Any, make_client: MakeClient, token_dir: Path
) -> None:
    make_client(caspio_emulator, token_cache=False).list_tables()
    assert not token_dir.exists()


def test_token_cache_roundtrip(tmp_path: Path) -> None:
    from sources.caspio.auth import Token

    cache = TokenCache(tmp_path / "t")
    tok = Token("a" * 40, "r" * 64, 2_000_000_000.0, 86399.0)
    cache.save("h:1", "cid", tok)
    loaded = cache.load("h:1", "cid")
    assert loaded is not None and loaded.access_token == "a" * 40
    assert cache.load("h:1", "other") is None
    assert "aaaa" not in repr(loaded)


def test_a_netrc_file_never_replaces_the_bearer_token(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests reads ~/.netrc (or $NETRC) for any call sent without auth, and a ``default``
    entry there would replace the Bearer header with Basic auth of other credentials, and
    send those to Caspio. The client's calls carry only their own credentials."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone-else password their-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = make_client(caspio_emulator, token_cache=False)
    assert client.list_tables()
    assert token_calls(caspio_emulator) == 1
