"""What every target check shares: the verdict type and the median lookup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

Cases = dict[str, dict[str, Any]]


@dataclass
class Target:
    id: str
    text: str
    measured: str
    status: str  # PASS | FAIL | N/A

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def median(cases: Cases, case_id: str, contender: str, key: str) -> float | None:
    value = cases.get(case_id, {}).get("median", {}).get(contender, {}).get(key)
    return float(value) if value is not None else None


def verdict(ok: bool | None) -> str:
    return "N/A" if ok is None else ("PASS" if ok else "FAIL")


def find(cases: Cases, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [c for c in cases.values() if predicate(c)]
