"""OAuth: README section 2."""

from __future__ import annotations

import re
import time

import requests

from caspio_emulator import Emulator


def token(emu: Emulator, **data: str) -> requests.Response:
    return requests.post(emu.token_url, data=data, timeout=10)


def test_client_credentials_in_form_body(caspio_emulator: Emulator) -> None:
    r = token(
        caspio_emulator,
        grant_type="client_credentials",
        client_id="demo-id",
        client_secret="demo-secret",
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    assert len(body["access_token"]) >= 300 and re.fullmatch(r"[0-9a-f]{64}", body["refresh_token"])
    assert r.headers["X-Caspio-Request-ID"]


def test_client_credentials_with_basic_auth_and_refresh(caspio_emulator: Emulator) -> None:
    auth = (caspio_emulator.client_id, caspio_emulator.client_secret)
    r = requests.post(
        caspio_emulator.token_url, data={"grant_type": "client_credentials"}, auth=auth, timeout=10
    )
    assert r.status_code == 200
    refresh = r.json()["refresh_token"]
    r2 = requests.post(
        caspio_emulator.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=auth,
        timeout=10,
    )
    assert r2.status_code == 200 and r2.json()["access_token"] != r.json()["access_token"]
    h = {"Authorization": "Bearer " + r2.json()["access_token"]}
    assert (
        requests.get(caspio_emulator.v3_url + "/tables", headers=h, timeout=10).status_code == 200
    )


def test_wrong_credentials_and_bad_refresh_token(caspio_emulator: Emulator) -> None:
    r = token(
        caspio_emulator, grant_type="client_credentials", client_id="demo-id", client_secret="nope"
    )
    assert r.status_code == 400 and r.json() == {"error": "invalid_client"}
    r = requests.post(
        caspio_emulator.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "0" * 64},
        auth=("demo-id", "demo-secret"),
        timeout=10,
    )
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}


def test_missing_unknown_and_expired_tokens_are_401(caspio_emulator: Emulator) -> None:
    url = caspio_emulator.v3_url + "/tables"
    assert requests.get(url, timeout=10).status_code == 401
    r = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 401 and r.headers["X-Caspio-Request-ID"]
    good = {"Authorization": "Bearer " + caspio_emulator.access_token()}
    assert requests.get(url, headers=good, timeout=10).status_code == 200
    caspio_emulator.expire_tokens()
    assert requests.get(url, headers=good, timeout=10).status_code == 401


def test_a_timed_revocation_can_spare_a_token_just_issued(caspio_emulator: Emulator) -> None:
    url = caspio_emulator.v3_url + "/tables"
    old = {"Authorization": "Bearer " + caspio_emulator.access_token()}
    time.sleep(0.4)
    new = {"Authorization": "Bearer " + caspio_emulator.access_token()}
    caspio_emulator.expire_tokens(sparing_seconds=0.3)
    assert requests.get(url, headers=old, timeout=10).status_code == 401
    assert requests.get(url, headers=new, timeout=10).status_code == 200


def test_stale_token_400_quirk(caspio_emulator: Emulator) -> None:
    caspio_emulator.configure(stale_token_400=True)
    url = caspio_emulator.v3_url + "/tables"
    h = {"Authorization": "Bearer " + caspio_emulator.access_token()}
    caspio_emulator.expire_tokens()
    r = requests.get(url, headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["Code"] == "IncorrectQueryParameter"
    assert (
        requests.get(url, headers={"Authorization": "Bearer unknown"}, timeout=10).status_code
        == 401
    )


def test_token_ttl_knob(caspio_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = caspio_emulator_factory(token_ttl=0)
    tok = token(
        emu,
        grant_type="client_credentials",
        client_id=emu.client_id,
        client_secret=emu.client_secret,
    )
    assert tok.json()["expires_in"] == 0
    h = {"Authorization": "Bearer " + tok.json()["access_token"]}
    assert requests.get(emu.v3_url + "/tables", headers=h, timeout=10).status_code == 401
    emu.configure(token_ttl=3600)
    tok = token(
        emu,
        grant_type="client_credentials",
        client_id=emu.client_id,
        client_secret=emu.client_secret,
    )
    assert tok.json()["expires_in"] == 3600


def test_token_requests_count_as_calls(caspio_emulator: Emulator) -> None:
    token(caspio_emulator, grant_type="client_credentials", client_id="demo-id", client_secret="x")
    token(
        caspio_emulator,
        grant_type="client_credentials",
        client_id="demo-id",
        client_secret="demo-secret",
    )
    assert caspio_emulator.calls == 2
    assert [e.is_token for e in caspio_emulator.log] == [True, True]
    assert [e.status for e in caspio_emulator.log] == [400, 200]
