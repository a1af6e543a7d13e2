"""Freeze the code under test for the length of one benchmark run.

The connector and the emulator are developed while benchmarks run; a contender process started
twenty minutes into a run must import the same code as the first one, or the medians mix two
versions. The packages are copied once and put first on every child's `PYTHONPATH`, and a
digest of their files goes into the results so a number can be traced to the code it measured.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

PACKAGES = ("sources", "pipelines", "caspio_emulator", "benchmarks")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".work", "*.duckdb*")


def digest(repo: Path) -> str:
    """The same digest `freeze` returns, of the live tree (for runs that do not freeze)."""
    h = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((repo / package).rglob("*")):
            parts = path.relative_to(repo).parts
            if (
                path.is_file()
                and not any(p in ("__pycache__", ".work") for p in parts)
                and not (path.suffix == ".pyc" or ".duckdb" in path.name)
            ):
                h.update(str(path.relative_to(repo)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def freeze(repo: Path, target: Path) -> str:
    """Copy the packages under test to `target`; return a digest of their source files."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    digest = hashlib.sha256()
    for package in PACKAGES:
        shutil.copytree(repo / package, target / package, ignore=IGNORE)
        for path in sorted((target / package).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(target)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
