"""One command for the whole benchmark: `python -m benchmarks.run [--quick] [--scenarios ...]`.

Starts the emulator in its own process with every table the chosen scenarios need, runs the
cases (`benchmarks/scenarios.py`), checks the issue's targets, and writes `results.json`, the
chart and `benchmarks.md` under `--docs-dir` (default `docs/`). `--quick` runs the same code at
tiny sizes for development and for the smoke test, and then writes nowhere near `docs/` unless
told to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import measure
from .chart import write_chart
from .emulator_proc import EmulatorProcess
from .machine import machine_facts
from .measure import REPO_ROOT
from .provenance import legacy_runs, tree_state
from .report import render
from .runner import Runner, RunSettings
from .scenarios import ALL_SCENARIOS, FULL, QUICK, Sizes, build_cases, emulator_tables, label
from .snapshot import freeze
from .targets import as_dicts, evaluate


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (development, tests)")
    parser.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="e.g. S1,S4")
    parser.add_argument("--repeat", type=int, default=None, help="runs per contender (3; quick 1)")
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=None,
        help="where benchmarks.md and benchmarks/ go (default docs/, "
        "or <work-dir>/docs with --quick)",
    )
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "benchmarks" / ".work")
    parser.add_argument("--keep-work", action="store_true", help="keep every run's DuckDB file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the connector on S1-size data (benchmarks.profile)",
    )
    parser.add_argument(
        "--generic-everywhere",
        action="store_true",
        help="run dlt's generic rest_api source in S2/S3 too (adds many minutes)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the cases measured now in an existing results.json (re-measuring "
        "some cases); the doc names the merged cases and when they ran",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-write benchmarks.md and the chart from <docs-dir>/benchmarks/results.json",
    )
    parser.add_argument(
        "--cases",
        default=None,
        help="only cases whose id starts with one of these (comma-separated)",
    )
    parser.add_argument(
        "--contenders",
        default=None,
        help="only these contenders (comma-separated), for development",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 3)
    scenarios = tuple(s.strip().upper() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(ALL_SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    docs_dir = args.docs_dir or (args.work_dir / "docs" if args.quick else REPO_ROOT / "docs")
    if args.render_only:
        saved = json.loads((docs_dir / "benchmarks" / "results.json").read_text())
        for case_id, when in saved["meta"].get("remeasured", {}).items():
            saved["cases"][case_id]["remeasured"] = when
        legacy_runs(saved)
        saved["cases"] = in_run_order(saved["cases"], sizes)
        size = saved["meta"]["sizes"]
        saved["targets"] = as_dicts(
            evaluate(saved["cases"], label(size["big"]), label(size["mid"]), label(size["small"]))
        )
        write_outputs(saved, docs_dir, None)
        return 0
    work = args.work_dir.resolve()
    if work.exists():
        shutil.rmtree(work / "runs", ignore_errors=True)
        shutil.rmtree(work / "state", ignore_errors=True)
        shutil.rmtree(work / "token_cache", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)

    tree = tree_state(REPO_ROOT)
    if not args.quick:
        measure.CODE_ROOT = work / "code"
        code_digest = freeze(REPO_ROOT, measure.CODE_ROOT)
    else:
        code_digest = "live tree (quick mode)"
    cases = build_cases(sizes, scenarios, args.generic_everywhere)
    if args.contenders:
        only = tuple(c.strip() for c in args.contenders.split(","))
        cases = [_only(c, only) for c in cases]
        cases = [c for c in cases if c.contenders]
    if args.cases:
        prefixes = tuple(p.strip() for p in args.cases.split(",") if p.strip())
        cases = [c for c in cases if c.id.startswith(prefixes)]
    tables = emulator_tables(cases)
    started = time.perf_counter()
    machine = machine_facts(REPO_ROOT)
    run_id = machine["started_at"]
    meta: dict[str, Any] = {
        "machine": machine,
        "quick": args.quick,
        "repeat": repeat,
        "scenarios": list(scenarios),
        "emulator_tables": tables,
        "sizes": sizes.__dict__,
        "code_digest": code_digest,
    }
    print(f"starting the emulator with {tables} ...", flush=True)
    results_cases: dict[str, dict[str, Any]] = {}
    profile_md: str | None = None
    with EmulatorProcess(tables, work / "emulator") as emulator:
        meta["emulator_startup_s"] = emulator.startup_seconds
        print(
            f"emulator at {emulator.base_url} (ready in {emulator.startup_seconds:.1f}s)",
            flush=True,
        )
        runner = Runner(
            emulator, RunSettings(repeat=repeat, work_dir=work, keep_work=args.keep_work)
        )
        for case in cases:
            if not emulator.alive():
                raise RuntimeError(f"the emulator died before {case.id}: {emulator.output[-20:]}")
            results_cases[case.id] = runner.run_case(case).as_dict()
        if args.profile and "S1" in scenarios:
            from .profile import profile_connector

            profile_md = profile_connector(
                emulator, "BenchBig", sizes.big, work / "profile", docs_dir / "benchmarks"
            )
    meta["total_seconds"] = time.perf_counter() - started
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["runs"] = {
        run_id: dict(
            tree,
            started_at=run_id,
            code_digest=code_digest,
            command="python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
            loadavg=[machine["loadavg_at_start"], meta["loadavg_at_end"]],
            minutes=round(meta["total_seconds"] / 60, 1),
            repeat=repeat,
        )
    }
    for case_dict in results_cases.values():
        case_dict["run"] = run_id
    results: dict[str, Any] = {"meta": meta, "cases": results_cases}
    if args.merge:
        results = merge_into(docs_dir / "benchmarks" / "results.json", results, sizes)
    results["targets"] = as_dicts(
        evaluate(results["cases"], label(sizes.big), label(sizes.mid), label(sizes.small))
    )
    write_outputs(results, docs_dir, profile_md)
    failed = sum(sum(c["failed_runs"].values()) for c in results_cases.values())
    print(
        f"done in {meta['total_seconds'] / 60:.1f} min; {failed} failed run(s); "
        f"results in {docs_dir}",
        flush=True,
    )
    for target in results["targets"]:
        print(f"  {target['status']:<4} {target['text']}: {target['measured']}")
    return 0


def _only(case: Any, only: tuple[str, ...]) -> Any:
    from dataclasses import replace

    return replace(case, contenders=tuple(c for c in case.contenders if c in only))


def in_run_order(cases: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """The cases in the order they run, which the doc follows. results.json keeps its keys
    sorted (``S1@1M`` before ``S1@200k``), so results read back from it need this."""
    order = [case.id for case in build_cases(sizes, ALL_SCENARIOS, generic_everywhere=True)]
    rank = {case_id: i for i, case_id in enumerate(order)}
    return dict(sorted(cases.items(), key=lambda item: rank.get(item[0], len(rank))))


def merge_into(path: Path, fresh: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """The saved results with the freshly measured cases replacing theirs (same sizes only)."""
    saved: dict[str, Any] = json.loads(path.read_text())
    saved_sizes = {k: saved["meta"]["sizes"].get(k) for k in ("big", "mid", "small")}
    if saved_sizes != {k: fresh["meta"]["sizes"][k] for k in saved_sizes}:
        raise SystemExit("--merge needs the same sizes (quick and full results do not mix)")
    for case_id, when in saved["meta"].pop("remeasured", {}).items():
        saved["cases"][case_id]["remeasured"] = when
    legacy_runs(saved)
    saved["cases"].update(fresh["cases"])
    saved["cases"] = in_run_order(saved["cases"], sizes)
    runs = dict(saved["meta"]["runs"], **fresh["meta"]["runs"])
    used = {case.get("run") for case in saved["cases"].values()}
    meta = dict(fresh["meta"], runs={k: v for k, v in runs.items() if k in used})
    return {"meta": meta, "cases": saved["cases"]}


def write_outputs(results: dict[str, Any], docs_dir: Path, profile_md: str | None) -> None:
    """results.json, the PNG and benchmarks.md, all under `docs_dir`."""
    data_dir = docs_dir / "benchmarks"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    write_chart(list(results["cases"].values()), data_dir / "benchmarks.png")
    doc_path = docs_dir / "benchmarks.md"
    existing = doc_path.read_text() if doc_path.exists() else None
    if profile_md:
        results = dict(results, profile_md=profile_md)
    doc_path.write_text(render(results, existing, "benchmarks/benchmarks.png"))


if __name__ == "__main__":
    sys.exit(main())
