"""Targets about calls and waiting: latency bound, rate windows, call budgets, incremental runs."""

from __future__ import annotations

import math
from typing import Any

from .target_types import Cases, Target, find, verdict

IN_FLIGHT = 4  # issue 17: the bound is calls x latency / 4 calls in flight
BOUND_RATIO = 1.0  # issue 17: wall time at most 1.0x that bound at 200k
RATE_SHARE = 0.9  # at least 90% of the rate a window allows
MAX_429_SHARE = 0.02  # under 2% of calls answered 429
SIZE_INDEPENDENCE = 1.5  # S4: big-table run at most 1.5x the small-table run


def in_flight_bound(case: dict[str, Any]) -> float | None:
    """Seconds the connector's calls take at `IN_FLIGHT` calls in flight (median calls)."""
    calls = case["median"].get("connector", {}).get("api_calls")
    return calls * case["latency_ms"] / 1000.0 / IN_FLIGHT if calls else None


def latency_targets(cases: Cases, mid: str) -> list[Target]:
    case = cases.get(f"L@{mid}")
    med = case["median"].get("connector", {}) if case else {}
    bound = in_flight_bound(case) if case else None
    wall = med.get("wall_s")
    ratio = wall / bound if wall and bound else None
    latency = f"{case['latency_ms']} ms" if case else "the latency"
    return [
        Target(
            f"L@{mid}-bound",
            f"L @{mid}, {latency} a call: wall time at most {BOUND_RATIO:g}x the bound of "
            f"{IN_FLIGHT} calls in flight (calls x latency / {IN_FLIGHT})",
            f"{ratio:.2f}x the bound ({wall:.1f}s vs {bound:.1f}s for {med['api_calls']:.0f} calls)"
            if ratio and wall and bound
            else "not measured",
            verdict(ratio <= BOUND_RATIO if ratio else None),
        )
    ]


def throttle_targets(cases: Cases) -> list[Target]:
    targets: list[Target] = []
    for case in find(cases, lambda c: bool(c["rate_limit"])):
        med = case["median"].get("connector", {})
        limit_calls, window = case["rate_limit"]
        allowed = limit_calls / window
        rate = med.get("request_rate")
        runs = case["runs"].get("connector", [])
        failed = case["failed_runs"].get("connector", 0)
        extra = " (extra case)" if case["id"].startswith("S3b") else ""
        # pooled over the runs, not a median: one run's 429s are not outvoted by quiet ones
        all_calls = sum(int(r.get("api_calls", 0)) for r in runs)
        all_429 = sum(int(r.get("status_429", 0)) for r in runs)
        share = all_429 / all_calls if all_calls and med else None
        per_run = ", ".join(str(r.get("status_429", 0)) for r in runs)
        name = f"{case['id']}{extra}"
        targets += [
            Target(
                f"{case['id']}-rate",
                f"{name}: at least {RATE_SHARE:.0%} of the request rate the limit allows "
                f"({allowed:.2f}/s)",
                f"{rate:.2f} calls/s = {rate / allowed:.0%} of the limit's rate"
                if rate
                else "not measured",
                verdict(rate >= RATE_SHARE * allowed if rate else None),
            ),
            Target(
                f"{case['id']}-429",
                f"{name}: under {MAX_429_SHARE:.0%} of calls answered 429 (all runs together)",
                f"{all_429} of {all_calls} calls ({share:.1%}); per run: {per_run}"
                if share is not None
                else "not measured",
                verdict(share < MAX_429_SHARE if share is not None else None),
            ),
            Target(
                f"{case['id']}-failed",
                f"{name}: no failed run",
                f"{failed} failed of {len(runs)}" if runs else "not measured",
                verdict(failed == 0 if runs else None),
            ),
        ]
    return targets


def call_targets(cases: Cases) -> list[Target]:
    worst_excess: list[str] = []
    checked = 0
    for case in cases.values():
        if case["kind"] not in ("full", "setup"):
            continue
        pages = len(case["tables"]) * math.ceil(case["rows_per_table"] / 1000)
        objects = len(case["tables"])
        for run in case["runs"].get("connector", []):
            checked += 1
            refused = run.get("status_429", 0)  # a refused call is repeated: the 429 targets
            bad = (
                run["record_calls"] > pages + refused
                or run["fields_calls"] > objects + refused
                or run["listing_calls"] > 2 + refused
                or run["other_calls"] > 0
            )
            if bad:
                worst_excess.append(
                    f"{case['id']}: {run['record_calls']} record/{pages}, "
                    f"{run['fields_calls']} fields/{objects}, {run['listing_calls']} listing/2, "
                    f"{run['other_calls']} other, {refused} refused"
                )
    token_runs = _token_calls_after_first(cases)
    targets = [
        Target(
            "calls-full",
            "API calls: a full sync spends at most sum(ceil(rows/1000)) record calls, one "
            "/fields call per object and two listing calls (each 429 allows one repeat)",
            f"{checked - len(worst_excess)} of {checked} runs within; "
            + ("; ".join(sorted(set(worst_excess))[:3]) or "no excess")
            if checked
            else "not measured",
            verdict(not worst_excess if checked else None),
        ),
        Target(
            "calls-token",
            "API calls: no token call when a cached token is valid (every connector run after "
            "the first of an invocation, which fills the token cache)",
            f"{sum(token_runs)} token calls over {len(token_runs)} such runs"
            if token_runs
            else "not measured",
            verdict(sum(token_runs) == 0 if token_runs else None),
        ),
    ]
    nochange = find(cases, lambda c: c["kind"] == "incremental" and not c["changed_rows"])
    runs = [(c, r) for c in nochange for r in c["runs"].get("connector", [])]
    over = [c for c, r in runs if r["api_calls"] - r["token_calls"] > 2 * len(c["tables"]) + 2]
    most = max((r["api_calls"] - r["token_calls"] for _, r in runs), default=None)
    targets.append(
        Target(
            "calls-nochange",
            "API calls: an incremental run with nothing changed spends at most two calls per "
            "object (its /fields, for design changes, and one page) plus two",
            f"at most {most} calls per run (limit: 2 per object + 2)"
            if most is not None
            else "not measured",
            verdict(not over if runs else None),
        )
    )
    return targets


def _token_calls_after_first(cases: Cases) -> list[int]:
    """Token calls of every connector run except the first of each invocation of the command
    (each invocation starts with a fresh token cache)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases.values():
        invocation = str(case.get("run") or case.get("remeasured") or "")
        groups.setdefault(invocation, []).extend(case["runs"].get("connector", []))
    counts: list[int] = []
    for runs in groups.values():
        ordered = sorted(runs, key=lambda r: r.get("finished_at", 0.0))
        counts += [int(r.get("token_calls", 0)) for r in ordered[1:]]
    return counts


def incremental_targets(cases: Cases, big: str, small: str) -> list[Target]:
    targets: list[Target] = []
    pairs = [
        ("no change", find(cases, lambda c: c["id"].startswith("S4 no change"))),
        ("changed", find(cases, lambda c: c["id"].startswith("S4 ") and c["changed_rows"])),
    ]
    for what, found in pairs:
        target_id = f"S4-{what.replace(' ', '-')}"
        text = (
            f"S4: incremental time ({what}) grows with the rows changed, not the table size: "
            f"@{big} at most {SIZE_INDEPENDENCE}x @{small}"
        )
        by_size = {c["rows_per_table"]: c for c in found}
        if len(by_size) < 2:
            targets.append(Target(target_id, text, "not measured", "N/A"))
            continue
        small_case, big_case = by_size[min(by_size)], by_size[max(by_size)]
        t_small = small_case["median"].get("connector", {}).get("wall_s")
        t_big = big_case["median"].get("connector", {}).get("wall_s")
        ratio = t_big / t_small if t_big and t_small else None
        targets.append(
            Target(
                target_id,
                text,
                f"{t_big:.2f}s @{big} vs {t_small:.2f}s @{small} = {ratio:.2f}x"
                if ratio and t_big and t_small
                else "not measured",
                verdict(ratio <= SIZE_INDEPENDENCE if ratio else None),
            )
        )
    return targets
