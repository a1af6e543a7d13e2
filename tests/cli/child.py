"""`caspio-sync` in a child process, optionally signalling itself at the start of one dlt step:
`python child.py STEP SIGNAL -- ARGS...` (STEP: none, normalize or load).

Why a hook: normalize and load of a test-sized table take a fraction of a second, too short to
hit from outside reliably. The hook sends the real signal to the child's own process group at
the start of the step (as a terminal's Ctrl-C would), then lets dlt's own code run on; the
product code under test is the unmodified CLI.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _signal_at(cls: Any, method: str, signum: int) -> None:
    original = getattr(cls, method)
    fired: list[bool] = []

    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            sys.stdout.write(f"SIGNAL_AT {method}\n")
            sys.stdout.flush()
            os.killpg(os.getpgrp(), signum)
        return original(self, *args, **kwargs)

    setattr(cls, method, hooked)


def main() -> int:
    step, signame, sep, *argv = sys.argv[1:]
    assert sep == "--"
    signum = int(getattr(signal, signame))
    if step == "normalize":
        from dlt.normalize.normalize import Normalize

        _signal_at(Normalize, "spool_files", signum)
    elif step == "load":
        from dlt.load.load import Load

        _signal_at(Load, "load_single_package", signum)
    from pipelines.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
