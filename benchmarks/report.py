"""Write `docs/benchmarks.md` from the results dict: every number in it comes from that dict.

The profile section is kept between markers so `benchmarks/profile.py` can refresh it on its
own without re-running the whole benchmark, and a benchmark re-run keeps the last profile.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .contenders import CONTENDERS, DESCRIPTIONS
from .provenance import runs_section
from .report_method import METHOD, contenders_section
from .targets_load import IN_FLIGHT, in_flight_bound

PROFILE_START = "<!-- profile:start -->"
PROFILE_END = "<!-- profile:end -->"
NO_PROFILE = "_No profile yet: run `.venv/bin/python -m benchmarks.profile`._"

COLUMNS = (
    "| Contender | Wall s | CPU s | Peak RSS MB | Rows/s | API calls (token/records/fields/"
    "listing) | 429s | Emulator CPU s | Wall × connector | Failed runs |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and value >= 10000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def contender_rows(case: dict[str, Any]) -> list[str]:
    lines = []
    for contender in case["contenders"]:
        med = case["median"].get(contender, {})
        ratio = case["wall_ratio_to_connector"].get(contender)
        failed = case["failed_runs"].get(contender, 0)
        total = len(case["runs"].get(contender, []))
        reasons = ", ".join(sorted(set(case.get("failure_reasons", {}).get(contender, []))))
        failed_cell = f"{failed} of {total}" + (f" ({reasons})" if reasons else "")
        name = DESCRIPTIONS[contender].label if contender in DESCRIPTIONS else contender
        if not med:
            lines.append(f"| {name} | failed | | | | | | | | {failed_cell} |")
            continue
        calls = (
            f"{_fmt(med.get('api_calls'), 0)} ({_fmt(med.get('token_calls'), 0)}/"
            f"{_fmt(med.get('record_calls'), 0)}/{_fmt(med.get('fields_calls'), 0)}/"
            f"{_fmt(med.get('listing_calls'), 0)})"
        )
        lines.append(
            f"| {name} | {_fmt(med.get('wall_s'), 2)} | {_fmt(med.get('cpu_s'), 2)} | "
            f"{_fmt(med.get('peak_rss_mb'), 0)} | {_fmt(med.get('rows_per_s'), 0)} | {calls} | "
            f"{_fmt(med.get('status_429'), 0)} | {_fmt(med.get('emulator_cpu_s'), 2)} | "
            f"{'–' if ratio is None else f'{ratio:.2f}×'} | {failed_cell} |"
        )
    return lines


def case_section(case: dict[str, Any]) -> str:
    head = f"### {case['id']}: {case['title']}\n\n"
    facts = (
        f"{len(case['tables'])} table(s) × {case['rows_per_table']:,} rows; latency "
        f"{case['latency_ms']} ms; rate limit "
        + (
            f"{case['rate_limit'][0]:,} per {case['rate_limit'][1]:g} s"
            if case["rate_limit"]
            else "none"
        )
        + f"; {_run_counts(case)}."
    )
    if case["rows_updated_via_api"]:
        facts += f" Rows updated through the API before each run: {case['rows_updated_via_api']}."
    notes = "".join(f"\n\n_{n}_" for n in case["notes"])
    body = "\n".join([COLUMNS, *contender_rows(case)])
    extra = latency_note(case) if case["scenario"] == "L" else ""
    if case["rate_limit"] and case["scenario"] != "L":
        extra = throttle_note(case)
    return head + facts + notes + "\n\n" + body + "\n" + extra


def _run_counts(case: dict[str, Any]) -> str:
    counts = {c: len(case["runs"].get(c, [])) for c in case["contenders"]}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} run(s) per contender, median shown"
    return "runs: " + ", ".join(f"{c} {n}" for c, n in counts.items()) + "; medians shown"


def latency_note(case: dict[str, Any]) -> str:
    """Wall time against the bound of `IN_FLIGHT` calls in flight, calls/s and 429s."""
    med = case["median"].get("connector", {})
    bound, wall, calls = in_flight_bound(case), med.get("wall_s"), med.get("api_calls")
    if not bound or not wall or not calls:
        return ""
    note = (
        f"\nIn-flight bound: {calls:.0f} calls x {case['latency_ms']} ms / {IN_FLIGHT} = "
        f"{bound:.1f} s. Connector (median): {wall:.1f} s wall = {wall / bound:.2f}x the bound, "
        f"{calls / wall:.2f} calls/s, {med.get('status_429', 0):.0f} answered 429."
    )
    if case["rate_limit"]:
        limit, window = case["rate_limit"]
        allowed = limit / window
        note += (
            f" The window allows {allowed:.2f} calls/s: {calls / wall / allowed:.0%} of it. "
            "Per run (wall s, calls/s, 429s): "
            + "; ".join(
                f"{r['wall_s']:.1f}, {r['request_rate']:.2f}, {r['status_429']}"
                for r in case["runs"].get("connector", [])
            )
            + "."
        )
    return note + "\n"


def throttle_note(case: dict[str, Any]) -> str:
    limit, window = case["rate_limit"]
    allowed = limit / window
    med = case["median"].get("connector", {})
    calls, wall = med.get("api_calls"), med.get("wall_s")
    if not calls or not wall:
        return ""
    pages = len(case["tables"]) * math.ceil(case["rows_per_table"] / 1000)
    sequential = pages * case["latency_ms"] / 1000.0
    sustained = calls / allowed
    window_note = (
        f"{calls:.0f} calls fit inside one window of {limit:,}, so the limit itself never "
        "forces a wait and the bound is set by latency and concurrency"
        if calls <= limit
        else f"{calls:.0f} calls exceed one window of {limit:,}, so the limit binds"
    )
    return (
        f"\nRate-limit bound: the limit allows {allowed:.2f} calls/s on average; at that rate the "
        f"connector's {calls:.0f} calls take {sustained:.1f} s. {window_note}. One connection "
        f"paging sequentially needs at least {pages} × {case['latency_ms']} ms = "
        f"{sequential:.1f} s. Measured: {wall:.1f} s wall, {calls / wall:.2f} calls/s "
        f"({calls / wall / allowed:.0%} of the limit's average rate).\n"
    )


def s4_summary(cases: dict[str, dict[str, Any]]) -> str:
    """Incremental runs next to the full sync of the same table: the S4 target in one table."""
    s4 = [c for c in cases.values() if c["scenario"] == "S4"]
    setups = {c["tables"][0]: c for c in s4 if c["kind"] == "setup"}
    lines = [
        "| Case | Table rows | Rows changed | Rows loaded | Wall s | API calls "
        "| Wall ÷ full sync |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in s4:
        med = case["median"].get("connector", {})
        full = setups.get(case["tables"][0], {}).get("median", {}).get("connector", {})
        share = med["wall_s"] / full["wall_s"] if med.get("wall_s") and full.get("wall_s") else None
        lines.append(
            f"| {case['id']} | {case['rows_per_table']:,} | "
            f"{case['changed_rows'] if case['kind'] == 'incremental' else 'all':} | "
            f"{_fmt(med.get('rows'), 0)} | {_fmt(med.get('wall_s'), 2)} | "
            f"{_fmt(med.get('api_calls'), 0)} | {'–' if share is None else f'{share:.2f}'} |"
        )
    return "Summary (connector medians):\n\n" + "\n".join(lines) + "\n"


def s5_section(cases: dict[str, dict[str, Any]]) -> str:
    rss_cases = [c for c in cases.values() if c["kind"] == "full" and c["scenario"] in ("S1", "S5")]
    rss_cases.sort(key=lambda c: c["rows_per_table"])
    if not rss_cases:
        return ""
    contenders = [c for c in CONTENDERS if any(c in case["contenders"] for case in rss_cases)]
    header = (
        "| Contender | "
        + " | ".join(f"{c['rows_per_table']:,} rows ({c['id']})" for c in rss_cases)
        + " |\n|---|"
        + "---:|" * len(rss_cases)
    )
    lines = [header]
    for contender in contenders:
        cells = [_fmt(c["median"].get(contender, {}).get("peak_rss_mb"), 0) for c in rss_cases]
        lines.append(f"| {DESCRIPTIONS[contender].label} | " + " | ".join(cells) + " |")
    return (
        "## Peak RSS by table size (S1 and S5 runs; MB, median)\n\n"
        "Peak RSS is the contender process's own `ru_maxrss` (from `wait4`), interpreter and "
        "imports included.\n\n" + "\n".join(lines) + "\n"
    )


def targets_section(targets: list[dict[str, str]]) -> str:
    lines = ["| Target | Measured | Result |", "|---|---|---|"]
    for t in targets:
        mark = {"PASS": "**PASS**", "FAIL": "**FAIL**"}.get(t["status"], t["status"])
        lines.append(f"| {t['text']} | {t['measured']} | {mark} |")
    return "## Targets (issues 4 and 17)\n\n" + "\n".join(lines) + "\n"


def machine_section(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    v = m["versions"]
    return (
        "## Machine (latest run)\n\n"
        f"- CPU: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['memory_gb']} GB RAM\n"
        f"- OS: {m['platform']}\n"
        f"- Python {m['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()) + "\n"
        f"- Emulator: one `caspio-emulator serve` process, tables generated at start-up in "
        f"{meta['emulator_startup_s']:.1f} s: "
        + ", ".join(f"{t} {n:,}" for t, n in meta["emulator_tables"].items())
        + "\n"
        + f"- Mode: {'quick (tiny sizes)' if meta['quick'] else 'full'}, {meta['repeat']} "
        f"run(s) per contender unless a case says otherwise, {meta['total_seconds'] / 60:.1f} min\n"
    )


LATENCY_INTRO = f"""Every call waits the latency in the emulator, as calls to a real account
wait on the network. The bound is the wall time of {IN_FLIGHT} calls always in flight: the
connector's calls x the latency / {IN_FLIGHT}. Re-measure these cases alone (about 15 minutes,
the rate window's fill included) with `.venv/bin/python -m benchmarks.run --scenarios L --merge`.

"""


def splice_profile(existing: str | None, profile_md: str | None) -> str:
    """The profile block: the fresh one if given, else the one already in the doc."""
    if profile_md:
        return f"{PROFILE_START}\n{profile_md.strip()}\n{PROFILE_END}"
    if existing:
        found = re.search(
            re.escape(PROFILE_START) + ".*?" + re.escape(PROFILE_END), existing, re.DOTALL
        )
        if found:
            return found.group(0)
    return f"{PROFILE_START}\n## Where the time goes\n\n{NO_PROFILE}\n{PROFILE_END}"


def replace_profile(doc: str, profile_md: str) -> str:
    block = splice_profile(None, profile_md)
    pattern = re.escape(PROFILE_START) + ".*?" + re.escape(PROFILE_END)
    if re.search(pattern, doc, re.DOTALL):
        return re.sub(pattern, lambda _: block, doc, flags=re.DOTALL)
    return doc.rstrip() + "\n\n" + block + "\n"


def render(results: dict[str, Any], existing_doc: str | None, chart_rel: str) -> str:
    cases: dict[str, dict[str, Any]] = results["cases"]
    meta = results["meta"]
    parts = [
        "# Benchmarks\n\n"
        "Written by `.venv/bin/python -m benchmarks.run` (raw numbers: "
        "[`benchmarks/results.json`](benchmarks/results.json)); do not edit by hand. "
        "The cases below come from the runs of that command listed here, each on the code "
        "named (`--merge` replaces only the cases measured again). Within a case every "
        "contender ran side by side in one run, so a case's ratios are from one run; figures "
        "of cases from different runs were measured on different code and machine load. "
        "Compare ratios, not absolute seconds, across machines. Why a target is missed, "
        "and what was measured to find out, is in [benchmarks-analysis.md]"
        "(benchmarks-analysis.md) (written by hand).\n\n" + runs_section(results),
        f"![benchmark chart]({chart_rel})\n",
        targets_section(results["targets"]),
        contenders_section(),
        machine_section(meta),
    ]
    for scenario, title in (
        ("L", "L latency (issue 17: the headline of wall time)"),
        ("S1", "S1 bulk"),
        ("S2", "S2 many tables"),
        ("S3", "S3 throttled"),
        ("S4", "S4 incremental"),
        ("S5", "S5 memory"),
    ):
        chosen = [c for c in cases.values() if c["scenario"] == scenario]
        if not chosen:
            continue
        summary = s4_summary(cases) + "\n" if scenario == "S4" else ""
        if scenario == "L":
            summary = LATENCY_INTRO
        parts.append(f"## {title}\n\n" + summary + "\n".join(case_section(c) for c in chosen))
    s5 = s5_section(cases)
    if s5:
        parts.append(s5)
    parts.append(splice_profile(existing_doc, results.get("profile_md")))
    parts.append(METHOD)
    return "\n".join(parts)
