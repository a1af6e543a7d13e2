"""The fixed prose of the report: each contender's configuration, and how values are measured."""

from __future__ import annotations

from .contenders import DESCRIPTIONS


def contenders_section() -> str:
    """Every contender's configuration, from `benchmarks/contenders/__init__.py`."""
    lines = [
        f"- **{d.label}** (`benchmarks/contenders/{name}.py`): {d.configuration}"
        for name, d in DESCRIPTIONS.items()
    ]
    return (
        "## Contenders and their configuration\n\n"
        "Each is a separate `python -m benchmarks.contenders.<name>` process against the same "
        "emulator process, started fresh for every run (imports included in wall time, as a "
        "user or scheduler would see it). Every contender reads 1,000 rows a call.\n\n"
        + "\n".join(lines)
        + "\n"
    )


METHOD = """## Method

- Wall time: process start to exit, measured by the harness. CPU time: the child's user+sys
  from `wait4`. Peak RSS: the child's `ru_maxrss`. Rows/s: rows loaded ÷ wall time.
- API calls: from the emulator's request log, reset before every run (token calls and failed
  calls included, as Caspio bills them). Emulator CPU s: the server process's CPU time during
  the run, a hint of how much of the wall time the emulator itself costs.
- Each value is the median of the runs; runs are interleaved (run 1 of every contender, then
  run 2, ...) so the noise of a shared machine spreads over all contenders. A run counts only if
  it exited 0 and the destination holds exactly the expected rows. Ratios are medians divided by
  the connector's median from the same run of the command.
- Latency cases (L): every call, token calls included, waits the latency in the emulator before
  it is answered. The in-flight bound is the connector's calls x the latency / 4: the wall
  time of 4 calls always in flight, nothing else counted. A rate window counts calls as they
  arrive (answered or refused) over the last window of seconds.
"""
