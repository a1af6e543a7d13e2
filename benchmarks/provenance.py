"""Which run, on which code, measured each case: the report's header is built from this.

A results file can hold cases from several invocations of the command (`--merge` replaces only
the cases measured again). Every case carries the `started_at` of its run; `meta["runs"]` holds
each run's commit, whether the tree had uncommitted changes, and the digest of the code frozen
for it. Results written before runs were recorded are read through `legacy_runs`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from .snapshot import PACKAGES

DIGEST_RE = re.compile(r"^(?P<when>.*?) \(code digest (?P<digest>[0-9a-f]+)\)$")


def tree_state(repo: Path) -> dict[str, Any]:
    """HEAD's short hash and the uncommitted changes in the packages under test."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout

    changed = [line for line in git("status", "--porcelain", "--", *PACKAGES).splitlines() if line]
    return {
        "git_revision": git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "dirty": bool(changed),
        "changed_files": len(changed),
    }


def legacy_runs(results: dict[str, Any]) -> None:
    """Give results written before runs were recorded a `runs` table and per-case `run`."""
    meta = results["meta"]
    if "runs" in meta:
        return
    first = meta["machine"]["started_at"]
    runs: dict[str, dict[str, Any]] = {
        first: {
            "started_at": first,
            "git_revision": meta["machine"].get("git_revision", "unknown"),
            "dirty": None,
            "code_digest": meta.get("code_digest"),
            "command": "not recorded",
            "loadavg": [meta["machine"].get("loadavg_at_start"), meta.get("loadavg_at_end")],
        }
    }
    for case in results["cases"].values():
        found = DIGEST_RE.match(str(case.get("remeasured") or ""))
        if not found:
            case.setdefault("run", first)
            continue
        when = found["when"]
        runs.setdefault(
            when,
            {
                "started_at": when,
                "git_revision": "not recorded",
                "dirty": None,
                "code_digest": found["digest"],
                "command": "not recorded",
                "loadavg": None,
            },
        )
        case["run"] = when
    meta["runs"] = runs


def runs_section(results: dict[str, Any]) -> str:
    """One line per run: its code and the cases it measured (the doc's provenance header)."""
    meta = results["meta"]
    legacy_runs(results)
    by_run: dict[str, list[str]] = {}
    for case_id, case in results["cases"].items():
        by_run.setdefault(str(case.get("run")), []).append(case_id)
    lines = []
    for started, case_ids in sorted(by_run.items()):
        run = meta["runs"].get(started, {})
        dirty = run.get("dirty")
        tree = (
            "tree state not recorded"
            if dirty is None
            else f"with {run.get('changed_files', 0)} uncommitted file(s) in the code under test"
            if dirty
            else "clean tree"
        )
        lines.append(
            f"- Run started {started}: commit {run.get('git_revision', 'unknown')}, {tree}, "
            f"code digest {run.get('code_digest')}; command `{run.get('command', 'not recorded')}`"
            f"; {_load(run.get('loadavg'))}. Cases: " + ", ".join(case_ids)
        )
    return "\n".join(lines) + "\n"


def _load(loadavg: Any) -> str:
    """`[[start 1/5/15 min], [end ...]]` as the 1-minute load average at start and end."""
    try:
        return f"load average (1 min) {loadavg[0][0]} at start, {loadavg[1][0]} at end"
    except (TypeError, IndexError):
        return "load average not recorded"
