"""How a process of ours ends once its work is done: ``exit_process``.

Interpreter shutdown runs full collections of the garbage collector while it clears modules,
and each walks the whole heap, which dlt, sqlglot and pyarrow make large: a quarter of a second
of every ``caspio-sync`` run, whatever it synced (docs/benchmarks-analysis.md). Frozen objects
are never walked, and the process hands its memory back to the system anyway. Only an
executable's own exit does this: a notebook or scheduler process that calls ``run_sync`` goes
on, and its garbage must stay collectable.
"""

import gc
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``, telling the collector to leave every object alive now alone."""
    gc.freeze()
    sys.exit(code)
