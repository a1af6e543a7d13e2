"""Benchmarks: this connector against what a user would otherwise run, on the same emulator.

Run `python -m benchmarks.run` (see `benchmarks/run.py`). Every contender is a separate process
(`benchmarks/contenders/`), so its wall time, CPU time and peak RSS are its own; API calls come
from the emulator's request log, which is the only count a Caspio bill would agree with.
"""
