"""The issues' targets, checked against measured medians: PASS, FAIL, or N/A (not measured).

Every check reads only what the run measured; a case that was not run yields N/A, never a
guess. Where an issue leaves a threshold open ("no larger", "grows with the rows changed") the
tolerance used is written into the check's text. Targets are ratios within one case (all its
contenders side by side in one run), never timed assertions in tests.
"""

from __future__ import annotations

from typing import Any

from .target_types import Cases, Target, median, verdict
from .targets_load import call_targets, incremental_targets, latency_targets, throttle_targets

RSS_LIMIT_MB = 300.0
RSS_GROWTH_TOLERANCE = 1.05  # "flat": within 5% (allocator noise between runs)
FLOOR_RATIO = 3.0  # issue 4: connector at most 3x the download floor at 1M
PARQUET_SPEEDUP = 6.0  # issue 17: at least 6x faster than rest_api with Parquet at 200k
PANDAS_SPEEDUP = 2.0  # issue 4: at least 2x faster than the pandas script
CPU_LIMIT_S = 8.0  # issue 17: connector user+sys at 1M rows

__all__ = ["Target", "as_dicts", "evaluate"]


def evaluate(cases: Cases, big: str, mid: str, small: str) -> list[Target]:
    """`big`, `mid`, `small`: the size labels used in the case ids (e.g. 1M, 200k, 100k)."""
    s1_big, s1_mid = f"S1@{big}", f"S1@{mid}"
    targets = [_floor_target(cases, s1_big, big)]
    targets.append(
        _speedup(cases, s1_mid, mid, "rest_api_parquet", "rest_api with Parquet", PARQUET_SPEEDUP)
    )
    for case_id, size in ((s1_big, big), (s1_mid, mid)):
        for contender, what in (
            ("pandas_script", "the pandas script paging by page number"),
            ("pandas_keyset", "the pandas script paging by key"),
        ):
            targets.append(_speedup(cases, case_id, size, contender, what, PANDAS_SPEEDUP))
    targets.append(_cpu_target(cases, s1_big, big))
    targets += _memory_targets(cases, s1_big, f"S5@{small}", big, small)
    targets += latency_targets(cases, mid)
    targets += throttle_targets(cases)
    targets += call_targets(cases)
    targets += incremental_targets(cases, big, small)
    return targets


def _floor_target(cases: Cases, case_id: str, size: str) -> Target:
    con = median(cases, case_id, "connector", "wall_s")
    floor = median(cases, case_id, "download_floor", "wall_s")
    ratio = con / floor if con and floor else None
    return Target(
        "S1-floor",
        f"S1 @{size}: connector end to end at most {FLOOR_RATIO:g}x the download floor",
        f"{ratio:.2f}x the floor ({con:.1f}s vs {floor:.1f}s)"
        if ratio and con and floor
        else "not measured",
        verdict(ratio <= FLOOR_RATIO if ratio else None),
    )


def _speedup(
    cases: Cases, case_id: str, size: str, contender: str, what: str, needed: float
) -> Target:
    con = median(cases, case_id, "connector", "wall_s")
    peer = median(cases, case_id, contender, "wall_s")
    speedup = peer / con if con and peer else None
    return Target(
        f"S1-{contender}@{size}",
        f"S1 @{size}: at least {needed:g}x faster than {what} (`{contender}`)",
        f"{speedup:.2f}x faster ({con:.2f}s vs {peer:.2f}s)"
        if speedup and con and peer
        else "not measured",
        verdict(speedup >= needed if speedup else None),
    )


def _cpu_target(cases: Cases, case_id: str, size: str) -> Target:
    cpu = median(cases, case_id, "connector", "cpu_s")
    return Target(
        "S1-cpu",
        f"S1 @{size}: connector process at most {CPU_LIMIT_S:g} CPU seconds (user + sys)",
        "not measured" if cpu is None else f"{cpu:.2f} CPU s",
        verdict(None if cpu is None else cpu <= CPU_LIMIT_S),
    )


def _memory_targets(cases: Cases, s1_big: str, s5_small: str, big: str, small: str) -> list[Target]:
    rss_small = median(cases, s5_small, "connector", "peak_rss_mb")
    rss_big = median(cases, s1_big, "connector", "peak_rss_mb")
    if rss_big is None:
        rss_big = median(cases, f"S5@{big}", "connector", "peak_rss_mb")
    worst = max((x for x in (rss_small, rss_big) if x is not None), default=None)
    grow = rss_big / rss_small if rss_big and rss_small else None
    return [
        Target(
            "S5-rss",
            f"S1/S5: connector peak RSS under {RSS_LIMIT_MB:.0f} MB (@{small}, @{big})",
            f"{_mb(rss_small)} @{small}, {_mb(rss_big)} @{big}",
            verdict(worst < RSS_LIMIT_MB if worst is not None else None),
        ),
        Target(
            "S5-flat",
            f"S5: peak RSS flat from {small} to {big} rows: @{big} within 5% of @{small}",
            f"{grow:.2f}x" if grow else "not measured",
            verdict(grow <= RSS_GROWTH_TOLERANCE if grow else None),
        ),
    ]


def _mb(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0f} MB"


def as_dicts(targets: list[Target]) -> list[dict[str, str]]:
    return [t.as_dict() for t in targets]


def statuses(targets: list[dict[str, Any]]) -> dict[str, str]:
    """Target id -> PASS | FAIL | N/A."""
    return {t["id"]: t["status"] for t in targets}
