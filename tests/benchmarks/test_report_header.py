"""The report's header says which run, on which code, measured each case (`--merge` included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.provenance import runs_section
from benchmarks.report import render
from benchmarks.run import merge_into
from benchmarks.scenarios import FULL

SIZES = {"big": 1_000_000, "mid": 200_000, "small": 100_000}


def _case(case_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": case_id,
        "scenario": case_id[:2],
        "title": "t",
        "kind": "full",
        "tables": ["T"],
        "rows_per_table": 200_000,
        "latency_ms": 0,
        "rate_limit": None,
        "changed_rows": 0,
        "rows_updated_via_api": [],
        "notes": [],
        "contenders": ["connector"],
        "median": {"connector": {"wall_s": 3.0}},
        "wall_ratio_to_connector": {"connector": 1.0},
        "failed_runs": {"connector": 0},
        "runs": {"connector": []},
        **extra,
    }


def _meta(started: str, **extra: Any) -> dict[str, Any]:
    machine = {
        "started_at": started,
        "git_revision": "aaaa111",
        "loadavg_at_start": [1.0, 1.0, 1.0],
        "cpu_model": "cpu",
        "logical_cores": 2,
        "memory_gb": 1,
        "platform": "p",
        "python": "3",
        "versions": {},
    }
    return {
        "machine": machine,
        "sizes": SIZES,
        "code_digest": "d1",
        "loadavg_at_end": [1.0, 1.0, 1.0],
        "emulator_startup_s": 1.0,
        "emulator_tables": {},
        "quick": False,
        "repeat": 3,
        "total_seconds": 60.0,
        **extra,
    }


def test_merged_cases_name_their_run_commit_and_tree(tmp_path: Path) -> None:
    # written before runs were recorded: one full run, one case re-measured later
    legacy = {
        "meta": _meta(
            "2026-11-30 21:51:08 UTC",
            remeasured={"S1@1M": "2026-12-01 00:01:33 UTC (code digest d2)"},
        ),
        "cases": {
            "S1@200k": _case("S1@200k"),
            "S1@1M": _case("S1@1M"),
            "S3@200k": _case("S3@200k"),
        },
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(legacy))
    started = "2026-12-02 08:00:00 UTC"
    fresh_run: dict[str, Any] = {
        "started_at": started,
        "git_revision": "bbbb222",
        "dirty": True,
        "changed_files": 3,
        "code_digest": "d3",
        "command": "python -m benchmarks.run --scenarios S1 --merge",
        "loadavg": [[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]],
    }
    fresh = {
        "meta": _meta(started, runs={started: fresh_run}),
        "cases": {
            "S1@200k": _case("S1@200k", run=started),
            "S1@1M": _case("S1@1M", run=started),
        },
    }
    merged = merge_into(path, fresh, FULL)
    lines = runs_section(merged).splitlines()

    # the re-measured case's old run no longer owns a case, so it is gone from the header
    assert len(lines) == 2, lines
    old, new = lines
    assert "commit aaaa111" in old and old.endswith("Cases: S3@200k")
    assert "tree state not recorded" in old
    assert "commit bbbb222, with 3 uncommitted file(s)" in new
    assert "--scenarios S1 --merge" in new
    assert new.endswith("Cases: S1@200k, S1@1M")

    merged["targets"] = []
    doc = render(merged, None, "chart.png")
    assert "measured in one run of that command" not in doc
    assert new in doc and old in doc


def test_a_clean_tree_says_so() -> None:
    run = {"started_at": "s", "git_revision": "c", "dirty": False, "code_digest": "d"}
    results = {"meta": {"runs": {"s": run}}, "cases": {"S1@200k": _case("S1@200k", run="s")}}
    assert "commit c, clean tree" in runs_section(results)
