"""The benchmark harness, run once at tiny sizes so it cannot rot.

Not a timed assertion: it checks that every contender ran against the emulator in its own
process, loaded exactly the expected rows and was charged API calls from the emulator's log,
and that the report, chart and raw JSON were written (to a temp dir, never to docs/).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.contenders import CONTENDERS
from benchmarks.run import main
from benchmarks.scenarios import QUICK, label

MID, BIG, MANY = label(QUICK.mid), label(QUICK.big), f"{QUICK.many_tables}x{label(QUICK.many_rows)}"
# what the cases below measure, so must get a verdict (PASS or FAIL: timings are never asserted)
MEASURED = {
    f"S1-rest_api_parquet@{MID}",
    f"S1-pandas_script@{MID}",
    f"S1-pandas_keyset@{MID}",
    f"L window@{MANY}-rate",
    f"L window@{MANY}-429",
    f"L window@{MANY}-failed",
    "calls-full",
    "calls-token",
}

pytestmark = pytest.mark.timeout(120)


def test_quick_benchmark_runs_every_contender(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    code = main(
        [
            "--quick",
            "--scenarios",
            "S1,S4,L",
            # every contender once, the incremental path on one table, the full rate window
            "--cases",
            f"S1@{MID},S4 setup@{BIG},S4 {label(QUICK.changed)} changed@{BIG},L window",
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
    targets = {t["id"]: t for t in results["targets"]}
    for target in targets.values():
        # N/A exactly for what was not measured; what was measured gets a verdict
        assert target["status"] in {"PASS", "FAIL", "N/A"}, target
        assert (target["status"] == "N/A") == (target["id"] not in MEASURED), target
        assert (target["status"] == "N/A") == ("not measured" in target["measured"]), target
    # the call-count targets are not timings: this run measures them, and they must hold
    for target_id in ("calls-full", "calls-token"):
        assert targets[target_id]["status"] == "PASS", targets[target_id]

    window = results["cases"][f"L window@{MANY}"]
    (run,) = window["runs"]["connector"]
    assert run["ok"], run["stderr_tail"]
    assert run["status_429"] > 0, "the window was filled before the run, so it must bind"

    # the header names the run and its commit, and claims no single run
    doc = (docs / "benchmarks.md").read_text()
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parents[2]), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    assert f"commit {head or 'unknown'}," in doc
    assert "measured in one run of that command" not in doc

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
