"""Faults the connector must survive (issue 5, items 1, 2 and 6), against the real emulator.

Every sync here talks HTTP to a `caspio_emulator` and loads a real DuckDB file; "parity" means the
destination equals the emulator's rows value for value with no duplicated PK_ID.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sources.caspio import exception_chain

from .harness import (
    ITEMS,
    JUST_RENEWED,
    NOTES,
    assert_parity,
    fault_counts,
    make_client,
    sync,
)

ALL_FAULTS = ["500", "503", "429", "reset", "truncate", "hang"]
RETRY_LINE = re.compile(r"retry (\d+) in ([0-9.]+) s")


def wait_for_log(emulator: Any, calls: int, timeout: float = 10.0) -> None:
    """Hung calls are logged when the emulator gives up on them: wait (bounded) for all."""
    deadline = time.monotonic() + timeout
    while len(emulator.log) < calls and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.scenario(
    "fault", "10% of calls fail at random: 500, 503, 429, reset, truncated JSON, hang"
)
def test_random_faults_of_every_kind_keep_parity(
    emulator: Any, tmp_path: Path, reliability_run: int, record_property: Any
) -> None:
    """10% of all calls (token calls included) fail with a random fault of every kind, plus one
    scripted fault of each kind mid-sync; the sync completes with parity and every retry is in
    the report."""
    emulator.configure(
        fault_rate=0.10, faults=ALL_FAULTS, hang_seconds=1.5, seed=1000 + reliability_run
    )
    client = make_client(emulator, read_timeout=0.5, max_retries=12, max_workers=3)
    stop = threading.Event()

    def script_each_kind_mid_sync() -> None:
        # once a few record pages went through, make sure every kind hits at least once
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            if sum(1 for e in emulator.log if "/records" in e.path) >= 5:
                for kind in ALL_FAULTS:
                    emulator.script_faults([kind])
                    time.sleep(0.05)
                return
            time.sleep(0.01)

    helper = threading.Thread(target=script_each_kind_mid_sync, daemon=True)
    helper.start()
    try:
        report = sync(emulator, tmp_path, client=client, page_size=20)
    finally:
        stop.set()
        helper.join(timeout=5)
    wait_for_log(emulator, client.stats.calls)
    emulator.configure(fault_rate=0.0)
    faults = fault_counts(emulator)
    record_property("faults", sum(faults.values()))
    record_property("retries", report.retries)
    record_property("calls", report.api_calls)

    assert set(faults) == set(ALL_FAULTS), f"not every fault kind was exercised: {faults}"
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])
    # every failed attempt was retried once and counted: client, report and emulator agree
    assert client.stats.snapshot()["retries"] == sum(faults.values()), faults
    assert report.retries == sum(faults.values())
    assert report.api_calls == len(emulator.log)


@pytest.mark.scenario("fault", "backoff: exponential, full jitter, capped, bounded attempts")
def test_backoff_is_exponential_jittered_capped_and_bounded(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Delays stay under min(cap, base * 2^(n-1)), grow with the attempt, vary (jitter), and a
    request that keeps failing gives up after max_retries + 1 attempts."""
    base, cap = 0.02, 0.12
    client = make_client(emulator, backoff_base=base, backoff_max=cap, max_retries=5)
    client.list_tables()  # the token, outside the measured calls
    caplog.set_level("DEBUG", logger="sources.caspio.retries")
    for _ in range(25):
        emulator.script_faults(["503"] * 4)
        client.list_tables()
    delays: dict[int, list[float]] = defaultdict(list)
    for record in caplog.records:
        match = RETRY_LINE.search(record.getMessage())
        if match:
            delays[int(match.group(1))].append(float(match.group(2)))
    assert sorted(delays) == [1, 2, 3, 4] and all(len(d) == 25 for d in delays.values()), delays
    for attempt, values in delays.items():
        ceiling = min(cap, base * 2 ** (attempt - 1))
        assert max(values) <= ceiling + 0.005, (attempt, values)  # logged with 2 decimals
    assert statistics.mean(delays[4]) > 2 * statistics.mean(delays[1])  # expected ratio: 6
    assert len(set(delays[4])) > 3, "no jitter: every delay the same"

    from sources.caspio import CaspioUnavailableError

    emulator.reset_log()
    emulator.script_faults(["500"] * 20)
    with pytest.raises(CaspioUnavailableError, match="gave up after"):
        client.list_tables()
    assert len(emulator.log) == 6  # 1 try + max_retries (5), then no more calls


@pytest.mark.scenario("fault", "429 with Retry-After: the wait honours the header")
def test_retry_after_is_honoured(emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A 429 carrying `Retry-After: 1` is retried no sooner than one second later, even though
    the backoff alone would wait a few milliseconds."""
    client = make_client(emulator, backoff_base=0.01, backoff_max=0.02)
    client.list_tables()
    emulator.configure(retry_after=1)
    emulator.script_faults(["429"])
    caplog.set_level("DEBUG", logger="sources.caspio.retries")
    started = time.monotonic()
    assert client.list_tables() == [ITEMS, NOTES]
    assert time.monotonic() - started >= 1.0
    waits = [float(m.group(2)) for r in caplog.records if (m := RETRY_LINE.search(r.getMessage()))]
    assert waits and waits[0] >= 1.0, waits
    assert client.stats.snapshot()["retries"] == 1


@pytest.mark.scenario("fault", "tokens expire every 2 s and are revoked mid-sync (stale-token 400)")
def test_token_expiry_and_stale_token_400_mid_sync(
    caspio_emulator_factory: Any,
    reliability_dataset: dict[str, Any],
    tmp_path: Path,
    record_property: Any,
) -> None:
    """Access tokens live 2 s and every token is revoked every 0.4 s during a slow sync; expired
    tokens are answered with Caspio's stale-token `400 IncorrectQueryParameter`. The sync
    completes with parity, no page fails (no retries), every refused call is replayed once,
    and token calls stay within one per expiry (no stampede across threads)."""
    emulator = caspio_emulator_factory(
        dataset=reliability_dataset, token_ttl=2, stale_token_400=True, latency_ms=25
    )
    client = make_client(emulator, max_workers=3)
    stop = threading.Event()
    revocations: list[float] = []

    def revoke() -> None:
        while not stop.wait(0.4):
            emulator.expire_tokens(sparing_seconds=JUST_RENEWED)
            revocations.append(time.monotonic())

    revoker = threading.Thread(target=revoke, daemon=True)
    started = time.monotonic()
    revoker.start()
    try:
        report = sync(emulator, tmp_path, client=client, page_size=10)
    finally:
        stop.set()
        revoker.join(timeout=5)
    duration = time.monotonic() - started
    stats = client.stats.snapshot()
    log = emulator.log
    refused = [e for e in log if not e.is_token and e.status in (400, 401)]
    token_calls = [e for e in log if e.is_token]
    record_property("token_calls", len(token_calls))
    record_property("refused_calls", len(refused))
    record_property("revocations", len(revocations))

    assert len(revocations) >= 3 and len(refused) >= 3, "the test did not exercise expiry"
    assert_parity(emulator, tmp_path / "sync.duckdb", [ITEMS, NOTES])
    assert stats["retries"] == 0, stats  # no page failed
    assert stats["auth_replays"] == len(refused)  # each refused call replayed exactly once
    assert all(e.status == 200 for e in token_calls)
    # one token call per revocation or natural expiry at most (plus the first one)
    natural_expiries = int(duration / 1.8) + 1
    assert len(token_calls) <= 1 + len(revocations) + natural_expiries, (
        len(token_calls),
        len(revocations),
        duration,
    )
    assert report.token_calls == len(token_calls)


@pytest.mark.scenario("fault", "stale-token 400 on one call: one token call, then the page")
def test_stale_token_400_costs_one_token_call(emulator: Any) -> None:
    """A single stale-token answer costs exactly one token call and one replay."""
    client = make_client(emulator)
    client.list_tables()
    emulator.reset_log()
    emulator.script_faults(["stale_token"])
    rows = client.get_records("tables", ITEMS, {"q.pageSize": 5, "q.pageNumber": 1}).data
    assert len(rows["Result"]) == 5
    kinds = [("token" if e.is_token else "api", e.status) for e in emulator.log]
    assert kinds == [("api", 400), ("token", 200), ("api", 200)], kinds


@pytest.mark.scenario("fault", "sustained outage (every call 503 / reset / hang): bounded give-up")
@pytest.mark.parametrize("kind", ["503", "reset", "hang"])
def test_sustained_outage_gives_up_in_bounded_time(
    emulator: Any, tmp_path: Path, kind: str, record_property: Any
) -> None:
    """Every call fails; with max_retry_seconds=2 the sync raises a clear 'gave up' error within
    the limit (+ one read timeout + slack), leaves no destination data and never hangs."""
    from sources.caspio import CaspioUnavailableError

    emulator.configure(fault_rate=1.0, faults=[kind], hang_seconds=3)
    client = make_client(emulator, max_retry_seconds=2.0, read_timeout=0.5, backoff_max=0.5)
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        sync(emulator, tmp_path, client=client)
    elapsed = time.monotonic() - started
    record_property("seconds_to_give_up", round(elapsed, 2))
    chain = list(exception_chain(failure.value))
    assert any(isinstance(c, CaspioUnavailableError) for c in chain), chain
    assert elapsed < 2.0 + 0.5 + 3.0, elapsed
    assert not (tmp_path / "sync.duckdb").exists() or _no_data(tmp_path / "sync.duckdb")


def _no_data(path: Path) -> bool:
    from .harness import duckdb_table_names

    return not duckdb_table_names(path)
