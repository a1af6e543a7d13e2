"""The issue's targets, checked against measured medians: PASS, FAIL, or N/A (not measured).

Every check reads only what the run measured; a case that was not run yields N/A, never a
guess. Where the issue leaves a threshold open ("no larger", "grows with the rows changed")
the tolerance used is written into the check's text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

RSS_LIMIT_MB = 300.0
RSS_GROWTH_TOLERANCE = 1.05  # "no larger": within 5% (allocator noise between runs)
SIZE_INDEPENDENCE = 1.5  # S4: big-table run at most 1.5x the small-table run


@dataclass
class Target:
    id: str
    text: str
    measured: str
    status: str  # PASS | FAIL | N/A

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


Cases = dict[str, dict[str, Any]]


def _median(cases: Cases, case_id: str, contender: str, key: str) -> float | None:
    value = cases.get(case_id, {}).get("median", {}).get(contender, {}).get(key)
    return float(value) if value is not None else None


def _verdict(ok: bool | None) -> str:
    return "N/A" if ok is None else ("PASS" if ok else "FAIL")


def _find(cases: Cases, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [c for c in cases.values() if predicate(c)]


def evaluate(cases: Cases, big: str, mid: str, small: str) -> list[Target]:
    """`big`, `mid`, `small`: the size labels used in the case ids (e.g. 1M, 200k, 100k)."""
    targets: list[Target] = []
    s1_big, s1_mid, s5_small = f"S1@{big}", f"S1@{mid}", f"S5@{small}"

    con = _median(cases, s1_big, "connector", "wall_s")
    floor = _median(cases, s1_big, "download_floor", "wall_s")
    ratio = con / floor if con and floor else None
    targets.append(
        Target(
            "S1-floor",
            f"S1 @{big}: connector end to end at most 3x the download floor",
            f"{ratio:.2f}x the floor ({con:.1f}s vs {floor:.1f}s)"
            if ratio and con and floor
            else "not measured",
            _verdict(ratio <= 3.0 if ratio else None),
        )
    )
    for case_id, size in ((s1_mid, mid),):
        con = _median(cases, case_id, "connector", "wall_s")
        gen = _median(cases, case_id, "rest_api_generic", "wall_s")
        speedup = gen / con if con and gen else None
        targets.append(
            Target(
                "S1-generic",
                f"S1 @{size}: at least 20x faster than dlt's generic rest_api source",
                f"{speedup:.1f}x faster ({con:.1f}s vs {gen:.1f}s)"
                if speedup and con and gen
                else "not measured",
                _verdict(speedup >= 20.0 if speedup else None),
            )
        )
    for case_id, size in ((s1_big, big), (s1_mid, mid)):
        con = _median(cases, case_id, "connector", "wall_s")
        pan = _median(cases, case_id, "pandas_script", "wall_s")
        speedup = pan / con if con and pan else None
        targets.append(
            Target(
                f"S1-pandas@{size}",
                f"S1 @{size}: at least 2x faster than the plain pandas script",
                f"{speedup:.2f}x faster ({con:.1f}s vs {pan:.1f}s)"
                if speedup and con and pan
                else "not measured",
                _verdict(speedup >= 2.0 if speedup else None),
            )
        )
    targets += _memory_targets(cases, s1_big, s5_small, big, small)
    targets += _throttle_targets(cases)
    targets += _call_targets(cases)
    targets += _incremental_targets(cases, big, small)
    return targets


def _memory_targets(cases: Cases, s1_big: str, s5_small: str, big: str, small: str) -> list[Target]:
    rss_small = _median(cases, s5_small, "connector", "peak_rss_mb")
    rss_big = _median(cases, s1_big, "connector", "peak_rss_mb")
    if rss_big is None:
        rss_big = _median(cases, f"S5@{big}", "connector", "peak_rss_mb")
    worst = max((x for x in (rss_small, rss_big) if x is not None), default=None)
    grow = rss_big / rss_small if rss_big and rss_small else None
    return [
        Target(
            "S5-rss",
            f"S1/S5: connector peak RSS under {RSS_LIMIT_MB:.0f} MB (@{small}, @{big})",
            f"{_mb(rss_small)} @{small}, {_mb(rss_big)} @{big}",
            _verdict(worst < RSS_LIMIT_MB if worst is not None else None),
        ),
        Target(
            "S5-flat",
            f"S5: peak RSS @{big} no larger than @{small} (within 5%)",
            f"{grow:.2f}x" if grow else "not measured",
            _verdict(grow <= RSS_GROWTH_TOLERANCE if grow else None),
        ),
    ]


def _mb(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0f} MB"


def _throttle_targets(cases: Cases) -> list[Target]:
    targets: list[Target] = []
    for case in _find(cases, lambda c: c["scenario"] in ("S2", "S3") and bool(c["rate_limit"])):
        med = case["median"].get("connector", {})
        limit_calls, window = case["rate_limit"]
        allowed = limit_calls / window
        rate = med.get("request_rate")
        calls, n429 = med.get("api_calls"), med.get("status_429")
        failed = case["failed_runs"].get("connector", 0)
        extra = " (extra case)" if case["id"].startswith("S3b") else ""
        share = n429 / calls if calls else None
        targets += [
            Target(
                f"{case['id']}-rate",
                f"{case['id']}{extra}: at least 90% of the request rate the limit allows "
                f"({allowed:.2f}/s)",
                f"{rate:.2f} calls/s = {rate / allowed:.0%} of the limit's rate"
                if rate
                else "not measured",
                _verdict(rate >= 0.9 * allowed if rate else None),
            ),
            Target(
                f"{case['id']}-429",
                f"{case['id']}{extra}: under 2% of calls answered 429",
                f"{n429:.0f} of {calls:.0f} calls ({share:.1%})"
                if share is not None and calls and n429 is not None
                else "not measured",
                _verdict(share < 0.02 if share is not None else None),
            ),
            Target(
                f"{case['id']}-failed",
                f"{case['id']}{extra}: no failed run",
                f"{failed} failed of {len(case['runs'].get('connector', []))}",
                _verdict(failed == 0 if case["runs"].get("connector") else None),
            ),
        ]
    return targets


def _call_targets(cases: Cases) -> list[Target]:
    worst_excess: list[str] = []
    checked = 0
    token_runs = _token_calls_after_first(cases)
    for case in cases.values():
        runs = case["runs"].get("connector", [])
        if case["kind"] not in ("full", "setup") or case["id"].startswith("S3b"):
            continue  # S3b's extra calls are its 429s, judged by its own 429 target
        pages = len(case["tables"]) * math.ceil(case["rows_per_table"] / 1000)
        objects = len(case["tables"])
        for run in runs:
            checked += 1
            bad = (
                run["record_calls"] > pages
                or run["fields_calls"] > objects
                or run["listing_calls"] > 2
                or run["other_calls"] > 0
            )
            if bad:
                worst_excess.append(
                    f"{case['id']}: {run['record_calls']} record/{pages}, "
                    f"{run['fields_calls']} fields/{objects}, {run['listing_calls']} listing/2, "
                    f"{run['other_calls']} other"
                )
    targets = [
        Target(
            "calls-full",
            "API calls: a full sync spends at most sum(ceil(rows/1000)) record calls, one "
            "/fields call per object and two listing calls (unthrottled cases)",
            f"{checked - len(worst_excess)} of {checked} runs within; "
            + ("; ".join(sorted(set(worst_excess))[:3]) or "no excess"),
            _verdict(not worst_excess if checked else None),
        ),
        Target(
            "calls-token",
            "API calls: no token call when a cached token is valid (every connector run after "
            "the first of an invocation, which fills the token cache)",
            f"{sum(token_runs)} token calls over {len(token_runs)} such runs",
            _verdict(sum(token_runs) == 0 if token_runs else None),
        ),
    ]
    nochange = _find(cases, lambda c: c["kind"] == "incremental" and not c["changed_rows"])
    runs = [(c, r) for c in nochange for r in c["runs"].get("connector", [])]
    over = [
        f"{c['id']}: {r['api_calls'] - r['token_calls']}"
        for c, r in runs
        if r["api_calls"] - r["token_calls"] > 2 * len(c["tables"]) + 2
    ]
    most = max((r["api_calls"] - r["token_calls"] for _, r in runs), default=None)
    targets.append(
        Target(
            "calls-nochange",
            "API calls: an incremental run with nothing changed spends at most two calls per "
            "object (its /fields, for design changes, and one page) plus two",
            f"at most {most} calls per run (limit 4 for one table)"
            if most is not None
            else "not measured",
            _verdict(not over if runs else None),
        )
    )
    return targets


def _token_calls_after_first(cases: Cases) -> list[int]:
    """Token calls of every connector run except the first of each invocation of the command
    (cases re-measured with --merge ran in a later invocation, with a fresh token cache)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases.values():
        invocation = str(case.get("remeasured") or "")  # "" = the original full run
        groups.setdefault(invocation, []).extend(case["runs"].get("connector", []))
    counts: list[int] = []
    for runs in groups.values():
        ordered = sorted(runs, key=lambda r: r.get("finished_at", 0.0))
        counts += [int(r.get("token_calls", 0)) for r in ordered[1:]]
    return counts


def _incremental_targets(cases: Cases, big: str, small: str) -> list[Target]:
    targets: list[Target] = []
    pairs = [
        ("no change", _find(cases, lambda c: c["id"].startswith("S4 no change"))),
        ("changed", _find(cases, lambda c: c["id"].startswith("S4 ") and c["changed_rows"])),
    ]
    for what, found in pairs:
        by_size = {c["rows_per_table"]: c for c in found}
        if len(by_size) < 2:
            targets.append(Target(f"S4-{what}", f"S4 ({what})", "not measured", "N/A"))
            continue
        small_case, big_case = by_size[min(by_size)], by_size[max(by_size)]
        t_small = small_case["median"].get("connector", {}).get("wall_s")
        t_big = big_case["median"].get("connector", {}).get("wall_s")
        ratio = t_big / t_small if t_big and t_small else None
        targets.append(
            Target(
                f"S4-{what.replace(' ', '-')}",
                f"S4: incremental time ({what}) grows with the rows changed, not the table size: "
                f"@{big} at most {SIZE_INDEPENDENCE}x @{small}",
                f"{t_big:.2f}s @{big} vs {t_small:.2f}s @{small} = {ratio:.2f}x"
                if ratio and t_big and t_small
                else "not measured",
                _verdict(ratio <= SIZE_INDEPENDENCE if ratio else None),
            )
        )
    return targets


def as_dicts(targets: list[Target]) -> list[dict[str, str]]:
    return [t.as_dict() for t in targets]
