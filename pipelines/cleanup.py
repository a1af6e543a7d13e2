"""No orphan files: what a stopped or failed run left in the pipeline's folder is removed.

dlt extracts into a folder of its own per run (``normalize/<random id>/``) and renames it to
``normalize/extracted/`` only when the extract succeeds. An extract that fails or is
interrupted leaves that folder behind with every page read so far (tens of MB for a big
table), and no later run looks at it again. A package that did reach ``extracted`` or the
load stage is not an orphan: ``run_sync`` finishes it first (``pipeline.has_pending_data``).
Called before each run (a run killed with SIGKILL cleans up nothing itself) and after a
failed one. Two runs of one pipeline at the same time are not supported (by dlt either).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dlt.common.storages import NormalizeStorage
from dlt.pipeline.pipeline import Pipeline

STATUS_TEMP_SUFFIX = ".tmp"


def remove_orphans(pipeline: Pipeline) -> list[Path]:
    """Delete abandoned extract folders and half-written files of ``pipeline``; returns them."""
    working = Path(pipeline.working_dir)
    removed: list[Path] = []
    normalize = working / "normalize"
    if normalize.is_dir():
        for entry in normalize.iterdir():
            if entry.is_dir() and entry.name != NormalizeStorage.EXTRACTED_FOLDER:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    if working.is_dir():
        for entry in working.glob(f"*{STATUS_TEMP_SUFFIX}"):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
