"""The benchmark harness, run once at tiny sizes so it cannot rot.

Not a timed assertion: it checks that every contender ran against the emulator in its own
process, loaded exactly the expected rows and was charged API calls from the emulator's log,
and that the report, chart and raw JSON were written (to a temp dir, never to docs/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.contenders import CONTENDERS
from benchmarks.run import main
from benchmarks.scenarios import QUICK, label

pytestmark = pytest.mark.timeout(120)


def test_quick_benchmark_runs_every_contender(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    code = main(
        [
            "--quick",
            "--scenarios",
            "S1,S4",
            # every contender once, and the incremental path on one table: < 60 s in all
            "--cases",
            f"S1@{label(QUICK.mid)},S4 setup@{label(QUICK.big)},"
            f"S4 {label(QUICK.changed)} changed@{label(QUICK.big)}",
            "--repeat",
            "1",
            "--work-dir",
            str(tmp_path / "work"),
            "--docs-dir",
            str(docs),
        ]
    )
    assert code == 0
    results = json.loads((docs / "benchmarks" / "results.json").read_text())
    assert (docs / "benchmarks" / "benchmarks.png").stat().st_size > 0
    assert "## Targets" in (docs / "benchmarks.md").read_text()

    s1 = [case for case in results["cases"].values() if case["scenario"] == "S1"]
    seen = {contender for case in s1 for contender in case["contenders"]}
    assert seen == set(CONTENDERS)
    for case in s1:
        for contender in case["contenders"]:
            (run,) = case["runs"][contender]
            assert run["ok"], f"{case['id']} {contender}: {run['stderr_tail']}"
            assert run["rows"] == case["expected_rows"], (case["id"], contender, run["rows"])
            assert run["api_calls"] > 0, (case["id"], contender)
            assert run["record_calls"] > 0, (case["id"], contender)
            assert run["wall_s"] > 0 and run["peak_rss_mb"] > 0

    s4 = [case for case in results["cases"].values() if case["scenario"] == "S4"]
    assert s4, "S4 produced no case"
    for case in s4:
        (run,) = case["runs"]["connector"]
        assert run["ok"], f"{case['id']}: {run['stderr_tail']}"
        assert run["dest_rows"] == case["rows_per_table"]
        if case["changed_rows"]:
            assert case["rows_updated_via_api"] == [case["changed_rows"]]
            assert run["rows"] >= case["changed_rows"]
    statuses = {t["status"] for t in results["targets"]}
    assert statuses <= {"PASS", "FAIL", "N/A"}

    # results.json keeps its keys sorted ("S4 10 changed" before "S4 setup"); a doc written
    # again from it must still list the cases in the order they ran
    headings = _case_headings(docs / "benchmarks.md")
    assert headings.index(f"S4 setup@{label(QUICK.big)}") < headings.index(
        f"S4 {label(QUICK.changed)} changed@{label(QUICK.big)}"
    )
    rendered_again = main(["--quick", "--render-only", "--docs-dir", str(docs)])
    assert rendered_again == 0
    assert _case_headings(docs / "benchmarks.md") == headings


def _case_headings(doc: Path) -> list[str]:
    return [
        line.removeprefix("### ").split(":")[0]
        for line in doc.read_text().splitlines()
        if line.startswith("### ")
    ]
