"""Where the connector's time goes on S1-size data: py-spy over all threads, summarised.

py-spy samples every thread of the connector process (the connector fetches pages on worker
threads, which a main-thread profiler such as pyinstrument would miss) and, by default, only
samples threads that are running, so percentages are shares of CPU time, not of waiting.
The summary groups samples by what the innermost frame is doing (JSON parsing, HTTP, Arrow,
dlt, DuckDB, imports) and lists the top functions by self and inclusive time.

    .venv/bin/python -m benchmarks.profile [--rows 1000000]

writes `docs/benchmarks/profile.json`, the raw stacks `docs/benchmarks/profile.txt` is not kept
(it is large); the "Where the time goes" section of `docs/benchmarks.md` is replaced in place.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from .emulator_proc import EmulatorProcess
from .measure import REPO_ROOT, contender_env, parse_result
from .report import replace_profile

FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
# Leaf frames where a thread sits blocked in C (py-spy cannot always tell these from work).
WAITING = (
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "Thread.join (threading.py)",
    "_wait_for_tstate_lock (threading.py)",
    "Queue.get (queue.py)",
    "SocketIO.readinto (socket.py)",
    "select (selectors.py)",
    "sleep",
)
WAITING_CATEGORY = "blocked: idle pool threads, locks, socket reads"
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports / interpreter start-up", ("<frozen importlib", "importlib/")),
    ("JSON parsing", ("json/", "orjson", "simplejson")),
    (
        "HTTP client (requests/urllib3/http.client/socket)",
        ("requests/", "urllib3/", "http/client", "socket.py", "ssl.py", "email/"),
    ),
    ("Arrow conversion (pyarrow)", ("pyarrow/",)),
    ("connector code (sources/caspio)", ("sources/caspio/",)),
    ("DuckDB", ("duckdb",)),
    ("dlt extract/normalize/load", ("dlt/",)),
    ("threads, queues, locks", ("threading.py", "queue.py", "concurrent/futures")),
)


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def short_file(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/", "lib/python3.10/"):
        if marker in path:
            return path.split(marker, 1)[1]
    root = str(REPO_ROOT) + "/"
    return path[len(root) :] if path.startswith(root) else path


def parse_raw(text: str) -> list[tuple[list[str], int]]:
    """py-spy `--format raw`: `frame;frame;...;leaf COUNT` per line -> (frames, count)."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            if frame.startswith(("process ", "thread ")):
                continue  # py-spy's --subprocesses / --threads roots, not code
            match = FRAME_RE.match(frame.strip())
            if match:
                frames.append(f"{match['func']} ({short_file(match['file'])})")
            else:
                frames.append(frame.strip())
        stacks.append((frames, int(count)))
    return stacks


def category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(n in frame for n in needles):
            return name
    return "other Python"


def summarise(stacks: list[tuple[list[str], int]], top: int = 15) -> dict[str, Any]:
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            categories["native code, no Python frame"] += count
            continue
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        categories[_innermost_category(frames)] += count
    boring = ("<module>", "_bootstrap", "run (threading.py)", "_run_module", "main (")

    def pct(counter: Counter[str], n: int, skip: tuple[str, ...] = ()) -> list[list[Any]]:
        rows = [(k, v) for k, v in counter.most_common() if not k.startswith(skip)]
        return [[k, round(100.0 * v / total, 1)] for k, v in rows[:n]]

    return {
        "samples": total,
        "categories": pct(categories, len(CATEGORIES) + 1),
        "self": pct(self_time, top),
        "inclusive": pct(inclusive, top + 10, boring),
    }


def _innermost_category(frames: list[str]) -> str:
    """The category of the innermost frame that belongs to a known library."""
    if frames[-1].startswith(WAITING):
        return WAITING_CATEGORY
    for frame in reversed(frames):
        name = category(frame)
        if name != "other Python":
            return name
    return "other Python"


def profile_connector(
    emulator: EmulatorProcess, table: str, rows: int, work_dir: Path, data_dir: Path
) -> str:
    """Profile one connector run against a running emulator; return the markdown section."""
    from . import measure
    from .snapshot import digest

    frozen = measure.CODE_ROOT != REPO_ROOT
    code_label = (
        f"the code frozen for the benchmark run, digest {digest(measure.CODE_ROOT)}"
        if frozen
        else f"the live tree at {time.strftime('%H:%M %Z')}, digest {digest(REPO_ROOT)}"
    )
    spy = py_spy()
    if spy is None:
        return "## Where the time goes\n\n_py-spy is not installed: `pip install py-spy`._\n"
    work_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work_dir / "out", ignore_errors=True)
    raw = work_dir / "profile.txt"
    cmd = [
        spy,
        "record",
        "--format",
        "raw",
        "--rate",
        "100",
        "--subprocesses",
        "-o",
        str(raw),
        "--",
        *connector_command(emulator, table, rows, work_dir / "out"),
    ]
    env = contender_env(
        {
            "SOURCES__CASPIO__TOKEN_CACHE_DIR": str(work_dir / "tokens"),
            "DLT_DATA_DIR": str(work_dir / "dlt_data"),
        }
    )
    emulator.configure(latency_ms=0, rate_limit=None)
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=work_dir, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not raw.exists():
        return (
            "## Where the time goes\n\n_The profiled run failed: "
            f"{(proc.stderr or proc.stdout)[-500:]!r}_\n"
        )
    summary = summarise(parse_raw(raw.read_text()))
    summary.update(rows=rows, wall_s=round(wall, 2), table=table, profiler="py-spy 100 Hz")
    summary["code"] = code_label
    data_dir.mkdir(parents=True, exist_ok=True)
    memory = memory_timeline(emulator, table, rows, work_dir / "memory", env)
    summary["memory"] = memory
    (data_dir / "profile.json").write_text(json.dumps(summary, indent=1))
    if memory.get("samples"):
        write_memory_chart(memory, data_dir / "memory.png")
    return render_profile(summary) + render_memory(memory)


def connector_command(emulator: EmulatorProcess, table: str, rows: int, out: Path) -> list[str]:
    """The connector contender's command line: profiled and memory-sampled runs are the same."""
    return [
        sys.executable,
        "-m",
        "benchmarks.contenders.connector",
        "--base-url",
        emulator.base_url,
        "--client-id",
        emulator.client_id,
        "--client-secret",
        emulator.client_secret,
        "--table",
        table,
        "--rows",
        str(rows),
        "--out",
        str(out),
    ]


def memory_timeline(
    emulator: EmulatorProcess, table: str, rows: int, work_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """One more connector run, unprofiled, with its process tree's RSS sampled every 0.2 s and
    dlt's step timings, to say in which phase the peak happens."""
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    log = work_dir / "connector.log"
    cmd = connector_command(emulator, table, rows, work_dir / "out")
    samples: list[list[float]] = []
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None and time.perf_counter() - started < 1800:
            try:
                tree = [watched, *watched.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree) / 1024**2
            except psutil.Error:
                rss = 0.0
            samples.append([round(time.perf_counter() - started, 2), round(rss, 1)])
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    wall = time.perf_counter() - started
    result = parse_result(log.read_text(errors="replace"))
    if not samples or not result:
        return {"error": f"memory run failed (exit {proc.returncode})"}
    peak_at, peak = max(samples, key=lambda s: s[1])
    steps: dict[str, float] = result.get("steps", {})
    begin = wall - float(result.get("inner_seconds", wall))
    phases = [("start-up and imports", 0.0, begin)]
    for name in ("extract", "normalize", "load"):
        if name in steps:
            phases.append((name, begin, begin + steps[name]))
            begin += steps[name]
    phase = next((n for n, lo, hi in phases if lo <= peak_at <= hi), "after load (row check, exit)")
    step = max(1, len(samples) // 300)
    return {
        "rows": rows,
        "wall_s": round(wall, 2),
        "peak_mb": peak,
        "peak_at_s": peak_at,
        "peak_phase": phase,
        "steps": steps,
        "phases": phases,
        "samples": samples[::step],
    }


def write_memory_chart(memory: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    xs = [s[0] for s in memory["samples"]]
    ys = [s[1] for s in memory["samples"]]
    ax.plot(xs, ys, color="#1f77b4")
    for name, lo, hi in memory["phases"]:
        ax.axvspan(lo, hi, alpha=0.08, color="black")
        ax.text((lo + hi) / 2, max(ys) * 0.95, name, ha="center", fontsize=8)
    ax.axhline(300, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel("seconds since process start")
    ax.set_ylabel("RSS, MB (process tree)")
    ax.set_title(f"Connector memory over one {memory['rows']:,}-row sync", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_memory(memory: dict[str, Any]) -> str:
    if "error" in memory:
        return f"\n_{memory['error']}_\n"
    order = ("extract", "normalize", "load")
    steps = ", ".join(f"{k} {memory['steps'][k]:.1f} s" for k in order if k in memory["steps"])
    return (
        f"\n### Memory over one run\n\n![connector RSS over time](benchmarks/memory.png)\n\n"
        f"A separate, unprofiled {memory['rows']:,}-row run sampled every 0.2 s: peak "
        f"{memory['peak_mb']:,.0f} MB at {memory['peak_at_s']:.1f} s of {memory['wall_s']:.1f} s, "
        f"during **{memory['peak_phase']}**. dlt steps: {steps}.\n"
    )


def render_profile(summary: dict[str, Any]) -> str:
    def table(rows: list[list[Any]], head: str) -> str:
        lines = [f"| {head} | % of samples |", "|---|---:|"]
        lines += [f"| `{name}` | {share:.1f} |" for name, share in rows]
        return "\n".join(lines)

    return (
        "## Where the time goes (connector, profiled)\n\n"
        f"One connector run of {summary['rows']:,} rows ({summary['table']}, zero latency) "
        f"under {summary['profiler']} over all threads, code: {summary.get('code', '?')}; "
        f"{summary['samples']:,} samples of "
        f"running Python code in {summary['wall_s']:.1f} s wall (the profiler slows the run; "
        "read shares, not seconds). Waiting on the socket is not sampled, so the shares are of "
        "CPU time.\n\n"
        "By the innermost library on the stack:\n\n"
        + table(summary["categories"], "Where")
        + "\n\nTop functions by self time:\n\n"
        + table(summary["self"], "Function (file)")
        + "\n\nTop functions by inclusive time (callees included):\n\n"
        + table(summary["inclusive"], "Function (file)")
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--docs-dir", type=Path, default=REPO_ROOT / "docs")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    table = "BenchBig"
    with EmulatorProcess({table: args.rows}, args.work_dir / "emulator") as emulator:
        md = profile_connector(
            emulator, table, args.rows, args.work_dir / "profile", args.docs_dir / "benchmarks"
        )
    doc = args.docs_dir / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    doc.write_text(replace_profile(text, md))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
