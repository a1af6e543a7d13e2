"""Facts about the machine and the software versions, written next to every result.

Numbers from a 2-core shared box and from a laptop are not comparable; the doc says which one
produced them, and how loaded it was when the run started and ended.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("dlt", "duckdb", "pandas", "pyarrow", "orjson", "requests", "sqlglot", "py-spy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "no commit yet"


def machine_facts(repo: Path) -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions(),
        "git_revision": git_revision(repo),
        "loadavg_at_start": [round(x, 2) for x in load],
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
