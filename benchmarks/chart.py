"""One PNG: wall time per contender for every full-load case, and peak RSS by size.

Log-scale wall time, because the contenders differ by orders of magnitude and a linear axis
would flatten the connector and the floor into the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .contenders import CONTENDERS, DESCRIPTIONS

COLORS = {
    "connector": "#1f77b4",
    "rest_api_parquet": "#9467bd",
    "rest_api_generic": "#d62728",
    "pandas_keyset": "#2ca02c",
    "pandas_script": "#ff7f0e",
    "download_floor": "#7f7f7f",
}
ORDER = CONTENDERS


def _grouped_bars(ax: Any, cases: list[dict[str, Any]], key: str, title: str, log: bool) -> None:
    width = 0.8 / len(ORDER)
    for i, contender in enumerate(ORDER):
        xs, ys = [], []
        for j, case in enumerate(cases):
            value = case["median"].get(contender, {}).get(key)
            if value:
                xs.append(j + (i - (len(ORDER) - 1) / 2) * width)
                ys.append(value)
        if xs:
            label = DESCRIPTIONS[contender].label
            ax.bar(xs, ys, width, label=label, color=COLORS.get(contender, "#bcbd22"))
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([c["id"] for c in cases], rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def write_chart(cases: list[dict[str, Any]], path: Path) -> None:
    full = [c for c in cases if c["kind"] == "full"]
    if not full:
        return
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    _grouped_bars(
        axes[0], full, "wall_s", "Wall time, median (s, log scale; lower is better)", log=True
    )
    _grouped_bars(axes[1], full, "peak_rss_mb", "Peak RSS, median (MB; lower is better)", log=False)
    axes[1].axhline(300, color="black", linestyle="--", linewidth=0.8)
    axes[1].text(0, 305, "300 MB target", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
