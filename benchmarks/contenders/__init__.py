"""The contenders: one module each, runnable as `python -m benchmarks.contenders.<name>`.

Each prints exactly one JSON result line (see `common.emit`) so the harness never has to trust
in-process timing: wall time, CPU time and peak RSS are measured from outside by the harness.
"""

CONTENDERS: tuple[str, ...] = ("connector", "rest_api_generic", "pandas_script", "download_floor")
