"""Make the repo's `benchmarks` package importable however pytest is launched.

`benchmarks/` is a directory of scripts, not part of the installed distribution, so a bare
`pytest` (unlike `python -m pytest`) would not find it on `sys.path`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
