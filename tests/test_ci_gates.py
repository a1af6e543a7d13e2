"""What CI runs cannot drift: the gate tools are pinned, mypy covers the tests, ``.ci/run``
sets ``CI=true``, fails without PostgreSQL and runs the README's command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_gate_tools_are_pinned_exactly() -> None:
    test_extra = _pyproject()["project"]["optional-dependencies"]["test"]
    pins = {re.split(r"[=<>!~\[ ]", spec, maxsplit=1)[0]: spec for spec in test_extra}
    for tool in ("mypy", "ruff"):
        assert re.fullmatch(rf"{tool}==[\w.]+", pins[tool]), pins[tool]


def test_mypy_covers_every_package_and_the_tests() -> None:
    packages = set(_pyproject()["tool"]["mypy"]["packages"])
    assert packages >= {"sources", "pipelines", "caspio_emulator", "benchmarks", "tests", "tools"}


def test_ci_run_sets_ci_checks_postgres_and_runs_the_readme_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    readme_command = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    )
    assert readme_command in (ROOT / "README.md").read_text()
    lines = [line.strip() for line in script.splitlines()]
    assert lines[-1] == readme_command
    export = lines.index("export CI=true")
    check = next(
        i for i, line in enumerate(lines) if "5432" in line and "create_connection" in line
    )
    assert export < check < len(lines) - 1
    assert "exit 1" in script[script.index("create_connection") :]
