"""The style rules are enforced by the same command that runs the tests: ruff and mypy (mypy
over every package of ``[tool.mypy]``, ``tests`` and ``tools`` included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["sources", "pipelines", "caspio_emulator", "benchmarks", "tools"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PACKAGES, "tests"],
        ["ruff", "format", "--check", *PACKAGES, "tests"],
        ["mypy"],  # the packages of [tool.mypy]: tests/test_ci_gates.py checks they are all
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
