"""What a sync's process holds before it reads a single row: peak RSS after each import step.

Run: `.venv/bin/python -m benchmarks.memory_baseline`. Each step runs in a fresh interpreter
(imports cannot be undone), and prints the process's peak RSS (`ru_maxrss`) once the step's
imports are done. It is the evidence behind the memory analysis in
docs/benchmarks-analysis.md: the part of a sync's peak that no change to how rows are read,
converted or loaded can remove.
"""

from __future__ import annotations

import json
import subprocess
import sys

STEPS: list[tuple[str, str]] = [
    ("python interpreter", "pass"),
    ("+ pyarrow", "import pyarrow"),
    ("+ duckdb", "import pyarrow, duckdb"),
    ("+ dlt", "import pyarrow, duckdb, dlt"),
    (
        "+ the connector (sources.caspio, pipelines)",
        "import pyarrow, duckdb, dlt, sources.caspio, pipelines.caspio_pipeline",
    ),
    (
        "+ pandas (pyarrow imports it on its first pa.array() of a Python list)",
        "import pyarrow, duckdb, dlt, sources.caspio, pipelines.caspio_pipeline\n"
        "import pyarrow as pa; pa.array([1, 2, 3])",
    ),
]


def measure(code: str) -> dict[str, float]:
    probe = (
        "import resource, time\n"
        "t0 = time.perf_counter()\n"
        f"{code}\n"
        "import json\n"
        "print(json.dumps({'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'seconds': time.perf_counter() - t0}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    print("| Step | Peak RSS MB | Import seconds |")
    print("|---|---:|---:|")
    for label, code in STEPS:
        result = measure(code)
        print(f"| {label} | {result['rss_mb']:.0f} | {result['seconds']:.2f} |")


if __name__ == "__main__":
    main()
