"""Knobs (issue item 9): latency, rate limit, faults, quota, request log, admin paths."""

from __future__ import annotations

import http.client

import pytest
import requests

from caspio_emulator import Emulator

from .conftest import Api


def test_latency_is_added_to_each_call(caspio_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = caspio_emulator_factory(latency_ms=60)
    api = Api(emu)
    api.get("/tables")
    assert all(e.duration_ms >= 60 for e in emu.log)
    emu.configure(latency_ms=0)


def test_rate_limit_answers_429_with_optional_retry_after(caspio_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = caspio_emulator_factory(rate_limit=(3, 300))
    api = Api(emu)  # call 1
    assert api.get("/tables").status_code == 200  # 2
    assert api.get("/tables").status_code == 200  # 3
    r = api.get("/tables")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.headers["X-Caspio-Request-ID"]
    emu.configure(retry_after=7)
    r = api.get("/tables")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    emu.configure(rate_limit="1000/1")
    assert api.get("/tables").status_code == 200
    assert emu.calls == 6  # throttled calls are billed too


@pytest.mark.parametrize(
    ("kind", "status"), [("500", 500), ("503", 503), ("429", 429), ("stale_token", 400)]
)
def test_scripted_status_faults(caspio_emulator: Emulator, kind: str, status: int) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.script_faults([kind])
    r = api.get("/tables")
    assert r.status_code == status and r.headers["X-Caspio-Request-ID"]
    assert api.get("/tables").status_code == 200
    assert [e.fault for e in caspio_emulator.log] == [None, kind, None]


def test_reset_fault_drops_the_connection(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.script_faults(["reset"])
    with pytest.raises(requests.ConnectionError):
        api.get("/tables")
    assert api.get("/tables").status_code == 200  # the session reconnects


def test_truncate_fault_cuts_the_body(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.script_faults(["truncate"])
    with pytest.raises(
        (
            requests.exceptions.ChunkedEncodingError,
            requests.ConnectionError,
            http.client.IncompleteRead,
        )
    ):
        r = api.get("/tables/Customers/records")
        r.json()
    assert api.get("/tables").status_code == 200


def test_hang_fault_outlasts_the_client_timeout(caspio_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = caspio_emulator_factory(hang_seconds=1.0)
    api = Api(emu)
    emu.script_faults(["hang"])
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.s.get(emu.v3_url + "/tables", timeout=0.3)
    assert api.get("/tables").status_code == 200


def test_random_faults_draw_from_the_pool(caspio_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = caspio_emulator_factory(fault_rate=1.0, faults=["503"])
    r = requests.post(emu.token_url, data={"grant_type": "client_credentials"}, timeout=10)
    assert r.status_code == 503
    emu.configure(fault_rate=0.0)
    api = Api(emu)
    assert api.get("/tables").status_code == 200


def test_monthly_quota_then_403(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.configure(quota=2)
    assert api.get("/tables").status_code == 200
    assert api.get("/views").status_code == 200
    r = api.get("/tables")
    assert r.status_code == 403 and r.json()["Code"] == "ApiCallsLimitExceeded"
    caspio_emulator.configure(quota=None)
    assert api.get("/tables").status_code == 200


def test_request_log_and_call_counter(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    api.get("/tables/Customers/records", **{"q.pageSize": 5})
    api.get("/tables/Nope")
    assert caspio_emulator.calls == 3
    entries = caspio_emulator.log
    assert [(e.method, e.status, e.is_token) for e in entries] == [
        ("POST", 200, True),
        ("GET", 200, False),
        ("GET", 404, False),
    ]
    assert entries[1].path == "/integrations/rest/v3/tables/Customers/records"
    assert "q.pageSize=5" in entries[1].query
    caspio_emulator.reset_log()
    assert caspio_emulator.calls == 0 and caspio_emulator.log == []


def test_admin_paths(caspio_emulator: Emulator) -> None:
    base = caspio_emulator.base_url + "/__emulator__"
    api = Api(caspio_emulator)
    api.get("/tables")
    log = requests.get(base + "/log", timeout=10).json()
    assert log["calls"] == 2 and len(log["log"]) == 2
    assert requests.post(
        base + "/config", json={"latency_ms": 0, "stale_token_400": True}, timeout=10
    ).ok
    assert caspio_emulator.knobs.settings.stale_token_400
    assert requests.post(base + "/faults", json={"script": ["500"]}, timeout=10).ok
    assert api.get("/tables").status_code == 500
    assert requests.post(base + "/expire-tokens", timeout=10).ok
    assert api.get("/tables").status_code == 400  # stale_token_400 is on
    assert requests.post(base + "/reset", timeout=10).ok
    assert caspio_emulator.calls == 0  # admin calls are never counted
    assert requests.post(base + "/config", json={"nope": 1}, timeout=10).status_code == 400
    assert (
        requests.post(base + "/faults", json={"script": ["explode"]}, timeout=10).status_code == 400
    )
