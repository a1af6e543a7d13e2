"""A local Caspio REST API: the ground every test, demo and benchmark of this project runs on.

``Emulator`` serves a Caspio account (tables, views, fields, records with the ``q.*`` SQL
front, OAuth, files, metadata) on loopback, with knobs for latency, throttling, faults and
quota. ``DEMO_DATASET`` is the path of the bundled demo account (a small business app).
"""

from __future__ import annotations

from pathlib import Path

from .dataset import Dataset, DatasetError, load_dataset
from .emulator import Emulator
from .faults import FAULT_KINDS, RequestLogEntry

DEMO_DATASET: Path = Path(__file__).resolve().parent / "demo_account.json"

__all__ = [
    "DEMO_DATASET",
    "FAULT_KINDS",
    "Dataset",
    "DatasetError",
    "Emulator",
    "RequestLogEntry",
    "load_dataset",
]
