"""Retries: scripted faults recovered and counted; a sustained outage gives up in bounded time;
error bodies mapped to errors that name the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sources.caspio import (
    CaspioClient,
    CaspioNotJsonError,
    CaspioObjectNotFoundError,
    CaspioQueryRejectedError,
    CaspioQuotaExceededError,
    CaspioUnavailableError,
)
from sources.caspio.paging import KeysetReader

from .conftest import record_calls, reset_log, settled_log

MakeClient = Callable[..., CaspioClient]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "500"),
        ("503", "503"),
        ("429", "429"),
        ("reset", "connection"),
        ("truncate", None),
        ("hang", "timeout"),
    ],
)
def test_single_fault_is_retried_and_counted(
    caspio_emulator_factory: Callable[..., Any],
    make_client: MakeClient,
    fault: str,
    reason: str | None,
) -> None:
    from caspio_emulator import DEMO_DATASET

    emu = caspio_emulator_factory(dataset=DEMO_DATASET, hang_seconds=1.5)
    client = make_client(emu, read_timeout=0.3)
    client.list_tables()  # token first, so the fault hits a data call
    reset_log(emu)
    emu.script_faults([fault])
    resp = client.get_records("tables", "Customers", {"q.pageSize": 5})
    assert len(resp.data["Result"]) == 5
    retries = client.stats.snapshot()["retries_by_reason"]
    assert sum(retries.values()) == 1
    if reason is not None:
        assert retries == {reason: 1}
    else:  # a truncated body surfaces as invalid JSON or a broken connection
        assert set(retries) <= {"invalid_json", "connection"}
    # the log is appended when an answer is finished, so order within a retry pair may vary
    log = settled_log(emu)
    assert len(log) == 2 and [e.fault for e in log].count(fault) == 1
    assert 200 in [e.status for e in log]


def test_retry_after_is_honoured(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    from caspio_emulator import DEMO_DATASET

    emu = caspio_emulator_factory(dataset=DEMO_DATASET, retry_after=1)
    client = make_client(emu)
    client.list_tables()
    emu.script_faults(["429"])
    client.list_tables()
    assert client.stats.retries["429"] == 1
    assert client.stats.retry_wait_seconds >= 1.0  # waited what the server asked


def test_sustained_outage_gives_up_with_clear_error(
    caspio_emulator: Any, make_client: MakeClient
) -> None:
    client = make_client(caspio_emulator, max_retries=50, max_retry_seconds=1.0)
    client.list_tables()
    caspio_emulator.configure(fault_rate=1.0, faults=["503"])
    with pytest.raises(CaspioUnavailableError) as ei:
        client.list_views()
    msg = str(ei.value)
    assert "gave up" in msg and "max_retry_seconds" in msg
    assert client.stats.retries["503"] >= 2


def test_max_retries_bounds_attempts(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator, max_retries=3)
    client.list_tables()
    reset_log(caspio_emulator)
    caspio_emulator.configure(fault_rate=1.0, faults=["500"])
    with pytest.raises(CaspioUnavailableError):
        client.list_views()
    assert caspio_emulator.calls == 4  # first try + 3 retries


def test_unknown_table_error(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    with pytest.raises(CaspioObjectNotFoundError) as ei:
        client.get_fields("tables", "Nope")
    assert "Nope" in str(ei.value) and "ObjectNotFound" in str(ei.value)


def test_rejected_query_error(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    with pytest.raises(CaspioQueryRejectedError) as ei:
        client.get_records("tables", "Customers", {"q.where": "Name = = 'x'"})
    assert "rejected" in str(ei.value)


def test_quota_exhausted_is_not_retried(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    client.list_tables()
    caspio_emulator.configure(quota=0)
    reset_log(caspio_emulator)
    with pytest.raises(CaspioQuotaExceededError) as ei:
        client.list_views()
    assert "quota" in str(ei.value)
    assert len(settled_log(caspio_emulator)) == 1


def test_html_answer_names_the_host(make_client: MakeClient, token_dir: Any) -> None:
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = b"<html><body>Welcome to our login page</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = CaspioClient(
            base_url=f"http://127.0.0.1:{server.server_port}",
            client_id="id",
            client_secret="secret",
            token_cache_dir=str(token_dir),
        )
        with pytest.raises(CaspioNotJsonError) as ei:
            client.list_tables()
        assert f"127.0.0.1:{server.server_port}" in str(ei.value)
        assert "subdomain" in str(ei.value)
        assert client.stats.calls == 1
    finally:
        server.shutdown()


def test_a_window_limit_is_learned_and_not_hit_again(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    """A sliding window of 10 calls per second, no Retry-After (as Caspio documents none).

    Without pacing, four workers fill the window, stall, and fill it again every second:
    a 429 per worker per backoff step in every window. With the throttle, one thread probes
    while the others wait, and the rate the window allowed becomes the client's pace."""
    emu = caspio_emulator_factory(dataset=None, generate={"T": 400})
    client = make_client(emu, max_workers=4, backoff_base=0.2, backoff_max=1.0)
    reset_log(emu)
    emu.configure(rate_limit=(10, 1.0))
    reader = KeysetReader(client, "tables", "T", page_size=10)
    keys = [row["PK_ID"] for page in reader.pages() for row in page.rows or []]
    assert sorted(keys) == list(range(1, 401)), "every row exactly once"
    statuses = [e.status for e in record_calls(emu)]
    assert statuses.count(200) == 40
    # How many refusals and which pace are judged on a virtual clock with seeded jitter
    # (tests/source/test_throttle_clock.py); here, on real time, only that a pace was learned.
    assert client.throttle.requests_per_second is not None


def test_a_one_off_429_teaches_no_pace(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    for _ in range(12):
        client.list_tables()
    caspio_emulator.script_faults(["429"])
    client.list_tables()
    assert client.stats.retries["429"] == 1
    assert client.throttle.requests_per_second is None


def test_a_long_throttle_is_waited_out_not_counted_as_failures(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    """A window far longer than max_retries short probes: the sync waits, then finishes."""
    emu = caspio_emulator_factory(dataset=None, generate={"T": 30})
    client = make_client(emu, max_workers=1, max_retries=1, backoff_base=0.05, backoff_max=0.2)
    reset_log(emu)
    emu.configure(rate_limit=(2, 1.5))
    reader = KeysetReader(client, "tables", "T", page_size=5)
    keys = [row["PK_ID"] for page in reader.pages() for row in page.rows or []]
    assert sorted(keys) == list(range(1, 31))
    assert client.stats.retries["429"] > 1, "more refusals than max_retries were waited out"
