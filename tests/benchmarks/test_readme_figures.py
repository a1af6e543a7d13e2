"""The README's benchmark figures are the ones in docs/benchmarks.md, and name their peer."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"(\d+(?:\.\d+)?) ?[x×]")


def _goes_fast_bullet() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("- **Goes fast**")
    end = readme.index("\n- **", start + 1)
    return " ".join(readme[start:end].split())


def _matches(figure: str, measured: float) -> bool:
    decimals = len(figure.partition(".")[2])
    return round(measured, decimals) == float(figure)


def test_every_ratio_in_the_readme_is_in_the_benchmark_doc() -> None:
    bullet = _goes_fast_bullet()
    figures = RATIO.findall(bullet)
    assert figures, "the README quotes no ratio: update this test with it"
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    measured = [float(x) for x in RATIO.findall(doc)]
    missing = [f for f in figures if not any(_matches(f, m) for m in measured)]
    assert not missing, f"README ratios not in docs/benchmarks.md: {missing}"


def test_the_readme_names_the_peer_configuration() -> None:
    bullet = _goes_fast_bullet()
    assert "rest_api" in bullet and "Parquet" in bullet, bullet
