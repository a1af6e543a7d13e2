"""`benchmarks/targets.py` against hand-made result sets: every target can pass, fail, and be N/A.

No benchmark runs here: each result set is the few medians and runs a target reads, written out
by hand, so a check that compares the wrong way round or never fails shows up as a failing case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.targets import evaluate, statuses

Cases = dict[str, dict[str, Any]]


def case(
    case_id: str,
    medians: dict[str, dict[str, float]],
    *,
    kind: str = "full",
    tables: int = 1,
    rows: int = 200_000,
    latency_ms: int = 0,
    rate_limit: tuple[int, float] | None = None,
    runs: list[dict[str, Any]] | None = None,
    changed_rows: int = 0,
    failed: int = 0,
    run: str = "run 1",
) -> Cases:
    """One case as `results.json` holds it, with only what the targets read."""
    connector_runs = runs if runs is not None else [call_run(tables, rows)]
    return {
        case_id: {
            "id": case_id,
            "scenario": case_id.split("@")[0].split(" ")[0],
            "kind": kind,
            "tables": [f"T{i}" for i in range(tables)],
            "rows_per_table": rows,
            "latency_ms": latency_ms,
            "rate_limit": list(rate_limit) if rate_limit else None,
            "changed_rows": changed_rows,
            "contenders": list(medians),
            "median": medians,
            "failed_runs": {"connector": failed},
            "runs": {"connector": connector_runs},
            "run": run,
        }
    }


def call_run(tables: int = 1, rows: int = 200_000, **over: Any) -> dict[str, Any]:
    """A connector run that spends exactly its budget: pages, one /fields per table, 2 listings."""
    pages = tables * -(-rows // 1000)
    run = {
        "record_calls": pages,
        "fields_calls": tables,
        "listing_calls": 2,
        "other_calls": 0,
        "token_calls": 0,
        "status_429": 0,
        "api_calls": pages + tables + 2,
        "finished_at": 1.0,
    }
    return run | over


def s1(size: str, **walls: float) -> Cases:
    rows = {"1M": 1_000_000, "200k": 200_000}[size]
    return case(f"S1@{size}", {c: {"wall_s": w} for c, w in walls.items()}, rows=rows)


def s1_cpu(cpu: float) -> Cases:
    return case("S1@1M", {"connector": {"wall_s": 9.0, "cpu_s": cpu}}, rows=1_000_000)


def rss(small: float, big: float) -> Cases:
    return case("S5@100k", {"connector": {"peak_rss_mb": small}}, rows=100_000) | case(
        "S1@1M", {"connector": {"peak_rss_mb": big}}, rows=1_000_000
    )


def latency(wall: float, calls: float = 203) -> Cases:
    med = {"connector": {"wall_s": wall, "api_calls": calls}}
    return case("L@200k", med, latency_ms=250)


def window(
    rate: float, n429: float = 0, calls: float = 423, failed: int = 0, runs: int = 3
) -> Cases:
    med = {"connector": {"request_rate": rate, "status_429": n429, "api_calls": calls}}
    one = call_run(20, 20_000, status_429=int(n429), api_calls=int(calls))
    connector_runs = [one] * runs
    return case(
        "L window@20x20k",
        med if runs else {"connector": {}},
        tables=20,
        rows=20_000,
        latency_ms=250,
        rate_limit=(2000, 300.0),
        runs=connector_runs,
        failed=failed,
    )


def window_first_run_refused() -> Cases:
    """Median 0 429s, but the first of three runs had 39 of 461: 3.0% of all calls."""
    cases = window(6.5, n429=0)
    first = call_run(20, 20_000, status_429=39, api_calls=461)
    cases["L window@20x20k"]["runs"]["connector"][0] = first
    return cases


def tokens(*per_run: tuple[str, int]) -> Cases:
    """Connector runs in order, each (invocation, token calls)."""
    cases: Cases = {}
    for i, (run, token_calls) in enumerate(per_run):
        r = call_run(token_calls=token_calls, finished_at=float(i))
        cases |= case(f"S1@200k #{i}", {"connector": {"wall_s": 3.0}}, runs=[r], run=run)
    return cases


def nochange(calls: int) -> Cases:
    r = call_run(api_calls=calls, token_calls=0)
    med = {"connector": {"wall_s": 1.0}}
    return case("S4 no change@1M", med, kind="incremental", rows=1_000_000, runs=[r])


def s4(what: str, small: float, big: float) -> Cases:
    prefix, changed = ("S4 no change", 0) if what == "no change" else ("S4 10k changed", 10_000)
    return case(
        f"{prefix}@100k",
        {"connector": {"wall_s": small}},
        kind="incremental",
        rows=100_000,
        changed_rows=changed,
        runs=[],
    ) | case(
        f"{prefix}@1M",
        {"connector": {"wall_s": big}},
        kind="incremental",
        rows=1_000_000,
        changed_rows=changed,
        runs=[],
    )


RESULT_SETS: list[tuple[str, Callable[[], Cases], str]] = [
    ("S1-floor", lambda: s1("1M", connector=6.0, download_floor=2.1), "PASS"),
    ("S1-floor", lambda: s1("1M", connector=7.0, download_floor=2.0), "FAIL"),
    ("S1-floor", lambda: s1("1M", connector=7.0), "N/A"),
    ("S1-rest_api_parquet@200k", lambda: s1("200k", connector=2.5, rest_api_parquet=16), "PASS"),
    ("S1-rest_api_parquet@200k", lambda: s1("200k", connector=3.0, rest_api_parquet=15), "FAIL"),
    ("S1-rest_api_parquet@200k", lambda: s1("200k", connector=3.0, rest_api_generic=90), "N/A"),
    ("S1-pandas_script@200k", lambda: s1("200k", connector=3.0, pandas_script=6.3), "PASS"),
    ("S1-pandas_script@200k", lambda: s1("200k", connector=3.0, pandas_script=5.7), "FAIL"),
    ("S1-pandas_script@200k", lambda: s1("1M", connector=3.0, pandas_script=60), "N/A"),
    ("S1-pandas_keyset@1M", lambda: s1("1M", connector=9.0, pandas_keyset=18.5), "PASS"),
    ("S1-pandas_keyset@1M", lambda: s1("1M", connector=9.0, pandas_keyset=17.5), "FAIL"),
    ("S1-pandas_keyset@1M", lambda: s1("1M", connector=9.0, pandas_script=50), "N/A"),
    ("S1-pandas_script@1M", lambda: s1("1M", connector=9.0, pandas_script=50), "PASS"),
    ("S1-pandas_script@1M", lambda: s1("1M", connector=9.0, pandas_script=10), "FAIL"),
    ("S1-pandas_script@1M", lambda: s1("200k", connector=3.0, pandas_script=9), "N/A"),
    ("S1-pandas_keyset@200k", lambda: s1("200k", connector=3.0, pandas_keyset=7), "PASS"),
    ("S1-pandas_keyset@200k", lambda: s1("200k", connector=3.0, pandas_keyset=5), "FAIL"),
    ("S1-pandas_keyset@200k", lambda: s1("1M", connector=9.0, pandas_keyset=30), "N/A"),
    ("S1-cpu", lambda: s1_cpu(7.9), "PASS"),
    ("S1-cpu", lambda: s1_cpu(8.1), "FAIL"),
    ("S1-cpu", lambda: s1("200k", connector=3.0), "N/A"),
    ("S5-rss", lambda: rss(250, 290), "PASS"),
    ("S5-rss", lambda: rss(250, 310), "FAIL"),
    ("S5-rss", lambda: s1("200k", connector=3.0), "N/A"),
    ("S5-flat", lambda: rss(250, 262), "PASS"),  # 1.048x
    ("S5-flat", lambda: rss(250, 263), "FAIL"),  # 1.052x
    ("S5-flat", lambda: case("S5@100k", {"connector": {"peak_rss_mb": 250}}), "N/A"),
    ("L@200k-bound", lambda: latency(12.6), "PASS"),  # bound 203 x 0.25 / 4 = 12.69 s
    ("L@200k-bound", lambda: latency(12.8), "FAIL"),
    ("L@200k-bound", lambda: s1("200k", connector=3.0), "N/A"),
    ("L window@20x20k-rate", lambda: window(6.01), "PASS"),  # 90% of 6.67/s is 6.0
    ("L window@20x20k-rate", lambda: window(5.99), "FAIL"),
    ("L window@20x20k-rate", lambda: window(6.5, runs=0), "N/A"),
    ("L window@20x20k-429", lambda: window(6.5, n429=8), "PASS"),  # 1.9%
    ("L window@20x20k-429", lambda: window(6.5, n429=9), "FAIL"),  # 2.1%
    ("L window@20x20k-429", lambda: window(6.5, runs=0), "N/A"),
    ("L window@20x20k-429", lambda: window_first_run_refused(), "FAIL"),
    ("L window@20x20k-failed", lambda: window(6.5), "PASS"),
    ("L window@20x20k-failed", lambda: window(6.5, failed=1), "FAIL"),
    ("L window@20x20k-failed", lambda: window(6.5, runs=0), "N/A"),
    ("calls-full", lambda: s1("200k", connector=3.0), "PASS"),
    ("calls-full", lambda: window(6.5, n429=5), "PASS"),  # refused calls repeated, allowed
    (
        "calls-full",
        lambda: case("S1@200k", {}, runs=[call_run(record_calls=201)]),
        "FAIL",
    ),
    ("calls-full", lambda: case("S1@200k", {}, runs=[call_run(fields_calls=2)]), "FAIL"),
    ("calls-full", lambda: case("S1@200k", {}, runs=[call_run(other_calls=1)]), "FAIL"),
    ("calls-full", lambda: nochange(4), "N/A"),
    ("calls-token", lambda: tokens(("a", 1), ("a", 0), ("b", 1), ("b", 0)), "PASS"),
    ("calls-token", lambda: tokens(("a", 1), ("a", 1)), "FAIL"),
    ("calls-token", lambda: tokens(("a", 1), ("b", 1)), "N/A"),  # first of each invocation
    ("calls-nochange", lambda: nochange(4), "PASS"),  # 2 per object + 2, one table
    ("calls-nochange", lambda: nochange(5), "FAIL"),
    ("calls-nochange", lambda: s1("200k", connector=3.0), "N/A"),
    ("S4-no-change", lambda: s4("no change", 1.0, 1.5), "PASS"),
    ("S4-no-change", lambda: s4("no change", 1.0, 1.6), "FAIL"),
    ("S4-no-change", lambda: s4("changed", 1.0, 1.0), "N/A"),
    ("S4-changed", lambda: s4("changed", 1.4, 1.45), "PASS"),
    ("S4-changed", lambda: s4("changed", 1.0, 2.0), "FAIL"),
    ("S4-changed", lambda: s4("no change", 1.0, 1.0), "N/A"),
]


@pytest.mark.parametrize(
    ("target_id", "build", "expected"),
    RESULT_SETS,
    ids=[f"{t}-{e}-{i}" for i, (t, _, e) in enumerate(RESULT_SETS)],
)
def test_target_verdict(target_id: str, build: Callable[[], Cases], expected: str) -> None:
    targets = [t.as_dict() for t in evaluate(build(), "1M", "200k", "100k")]
    found = statuses(targets)
    assert found[target_id] == expected, next(t for t in targets if t["id"] == target_id)


def test_every_target_is_seen_passing_failing_and_not_measured() -> None:
    """A new target must come with hand-made results for all three verdicts."""
    produced = set(statuses([t.as_dict() for t in evaluate(window(6.5), "1M", "200k", "100k")]))
    for verdict in ("PASS", "FAIL", "N/A"):
        covered = {t for t, _, e in RESULT_SETS if e == verdict}
        assert produced <= covered, (verdict, sorted(produced - covered))


def test_nothing_measured_is_all_not_applicable() -> None:
    targets = evaluate({}, "1M", "200k", "100k")
    assert {t.status for t in targets} == {"N/A"}
    assert all("not measured" in t.measured for t in targets)


def test_the_bound_is_calls_times_latency_over_four() -> None:
    targets = evaluate(latency(25.375, calls=406), "1M", "200k", "100k")
    (target,) = [t for t in targets if t.id == "L@200k-bound"]
    assert "25.4s vs 25.4s for 406 calls" in target.measured
    assert target.status == "PASS"
