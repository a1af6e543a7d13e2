"""A small mutation check: flip comparisons and constants, see which mutants the tests miss.

Run on demand (never in CI; pytest never collects it):

    .venv/bin/python -m tools.mutate                       # every module, report to stdout
    .venv/bin/python -m tools.mutate --write docs/mutation.md --max-per-module 40

Each mutant changes one thing in one module: a comparison operator (``<`` <-> ``<=``,
``>`` <-> ``>=``, ``==`` <-> ``!=``, ``is`` <-> ``is not``, ``in`` <-> ``not in``), a number
(``n`` -> ``n + 1``, ``0.0`` -> ``1.0``), or a boolean constant. The tree is copied to a temp
directory first: the working tree is never touched. A mutant is *killed* when the module's tests
fail (or hang past ``--timeout``), *survives* when they pass. Why: a suite that passes with
``<`` turned into ``<=`` in a paging bound does not check that bound.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("sources", "pipelines", "caspio_emulator", "tests", "tools", "benchmarks", "deploy")

MODULES: dict[str, list[str]] = {
    "sources/caspio/paging.py": ["tests/source/test_paging.py", "tests/source/test_cassettes.py"],
    "sources/caspio/incremental.py": [
        "tests/source/test_incremental_rules.py",
        "tests/source/test_filters.py",
        "tests/source/test_pipeline.py",
    ],
    "sources/caspio/schema.py": ["tests/source/test_schema.py", "tests/source/test_dst_sync.py"],
    "sources/caspio/auth.py": ["tests/source/test_auth.py", "tests/source/test_credentials.py"],
    "sources/caspio/throttle.py": ["tests/source/test_throttle_clock.py"],
}
"""Module -> the fast tests that should kill its mutants."""

FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the n-th mutation point of the module, in walk order
    line: int
    what: str


def _points(tree: ast.AST) -> list[tuple[ast.AST, int | None, str]]:
    """(node, operator index or None, description) for every mutation point."""
    points: list[tuple[ast.AST, int | None, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIPS:
                    new = FLIPS[type(op)]
                    points.append((node, i, f"{type(op).__name__} -> {new.__name__}"))
        elif isinstance(node, ast.Constant) and not isinstance(node.value, str):
            if isinstance(node.value, bool):
                points.append((node, None, f"{node.value} -> {not node.value}"))
            elif isinstance(node.value, int | float):
                points.append((node, None, f"{node.value!r} -> {node.value + 1!r}"))
    return points


def mutants(module: str, root: Path) -> list[Mutant]:
    tree = ast.parse((root / module).read_text())
    return [
        Mutant(module, i, getattr(node, "lineno", 0), what)
        for i, (node, _, what) in enumerate(_points(tree))
    ]


def mutated_source(mutant: Mutant, root: Path) -> str:
    tree = ast.parse((root / mutant.module).read_text())
    node, op_index, _ = _points(tree)[mutant.index]
    if isinstance(node, ast.Compare) and op_index is not None:
        node.ops[op_index] = FLIPS[type(node.ops[op_index])]()
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int | float):
            node.value = value + 1
    return ast.unparse(tree)


def run_tests(work: Path, tests: list[str], timeout: float) -> str:
    """'passed', 'failed' or 'timeout' for the module's tests in the copied tree."""
    env = {**os.environ, "PYTHONPATH": str(work), "CI": "true"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            cmd, cwd=work, env=env, capture_output=True, timeout=timeout, preexec_fn=_limit_memory
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if done.returncode == 0 else "failed"


MEMORY_LIMIT = 3 * 1024**3
"""Address space per test run: a mutant that pages forever fails on memory, not the machine."""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def copy_tree(root: Path, work: Path) -> None:
    for name in COPIED:
        if (root / name).exists():
            shutil.copytree(root / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", work / "pyproject.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="tree to mutate (copied first)")
    parser.add_argument("--modules", nargs="*", default=list(MODULES))
    parser.add_argument("--max-per-module", type=int, default=0, help="0: every mutant")
    parser.add_argument("--seed", type=int, default=19, help="sample seed (with a maximum)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--write", type=Path, help="write the markdown report here")
    args = parser.parse_args(argv)

    rows: list[tuple[Mutant, str]] = []
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        copy_tree(args.root, work)
        for module in args.modules:
            tests = MODULES[module]
            if run_tests(work, tests, args.timeout) != "passed":
                print(f"{module}: its tests fail unmutated; skipped", file=sys.stderr)
                continue
            chosen = mutants(module, work)
            if args.max_per_module and len(chosen) > args.max_per_module:
                chosen = sorted(
                    random.Random(args.seed).sample(chosen, args.max_per_module),
                    key=lambda m: m.index,
                )
            original = (work / module).read_text()
            try:
                for mutant in chosen:
                    (work / module).write_text(mutated_source(mutant, work))
                    outcome = run_tests(work, tests, args.timeout)
                    (work / module).write_text(original)
                    rows.append((mutant, outcome))
                    print(f"{module}:{mutant.line} {mutant.what}: {outcome}", flush=True)
            finally:
                (work / module).write_text(original)
    report = render(rows, args)
    if args.write:
        args.write.write_text(report)
    print(report)
    return 0


def render(rows: list[tuple[Mutant, str]], args: argparse.Namespace) -> str:
    killed = sum(1 for _, outcome in rows if outcome != "passed")
    lines = [
        f"Mutants: {len(rows)}, killed {killed}, survived {len(rows) - killed}"
        + (f", score {killed / len(rows):.0%}" if rows else ""),
        "",
        "| module | mutants | killed | score |",
        "|---|---|---|---|",
    ]
    for module in args.modules:
        mine = [outcome for m, outcome in rows if m.module == module]
        if mine:
            k = sum(1 for o in mine if o != "passed")
            lines.append(f"| `{module}` | {len(mine)} | {k} | {k / len(mine):.0%} |")
    lines += ["", "Survivors:", ""]
    lines += [f"- `{m.module}:{m.line}` {m.what}" for m, o in rows if o == "passed"] or ["- none"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
