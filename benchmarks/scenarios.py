"""Scenarios S1-S5 of issue 4 and L of issue 17 as a flat list of cases, full or `--quick` size.

A case is one measured configuration (scenario, table sizes, latency, rate limit, contenders).
All cases of a run share one emulator process whose tables are generated once at start-up;
latency and rate limit are switched per case through the admin config path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .contenders import CONTENDERS

ALL_SCENARIOS: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5", "L")
EVERYONE: tuple[str, ...] = CONTENDERS
NO_DLT: tuple[str, ...] = ("connector", "pandas_keyset", "pandas_script", "download_floor")
NO_GENERIC: tuple[str, ...] = ("connector", "pandas_script", "download_floor")  # S2/S3 as before
LATENCY_PEERS: tuple[str, ...] = ("rest_api_parquet", "pandas_keyset", "download_floor")


@dataclass(frozen=True)
class Sizes:
    """Every size knob; `FULL` is the issue's, `QUICK` keeps the same shape at tiny sizes."""

    big: int  # S1 / S4 / S5 large table
    mid: int  # S1 table every contender runs; S3's table
    small: int  # S5 small table; S4's second table
    many_tables: int
    many_rows: int
    changed: int  # S4: rows updated before each incremental run (1% of `big`)
    s2_latency_ms: int
    s3_latency_ms: int
    rate_limit: tuple[int, float]
    tight_rate_limit: tuple[int, float]  # same rate, window small enough to bind
    latency_ms: int  # L: every call
    binding_limit: tuple[int, float]  # L: the window, started full so that it binds


FULL = Sizes(
    big=1_000_000,
    mid=200_000,
    small=100_000,
    many_tables=20,
    many_rows=20_000,
    changed=10_000,
    s2_latency_ms=100,
    s3_latency_ms=300,
    rate_limit=(2000, 300.0),
    tight_rate_limit=(100, 15.0),
    latency_ms=250,
    binding_limit=(2000, 300.0),
)
QUICK = Sizes(
    big=5_000,
    mid=2_500,
    small=2_000,
    many_tables=3,
    many_rows=1_500,
    changed=50,
    s2_latency_ms=5,
    s3_latency_ms=10,
    rate_limit=(2000, 300.0),
    tight_rate_limit=(8, 2.0),
    latency_ms=10,
    binding_limit=(10, 2.0),
)

BIG, MID, SMALL = "BenchBig", "BenchMid", "BenchSmall"


def many_names(sizes: Sizes) -> tuple[str, ...]:
    return tuple(f"BenchMany{i:02d}" for i in range(1, sizes.many_tables + 1))


@dataclass(frozen=True)
class Case:
    """One measured configuration; `kind` says how its repeats relate to each other."""

    id: str
    scenario: str
    title: str
    tables: tuple[str, ...]
    rows_per_table: int
    contenders: tuple[str, ...]
    latency_ms: int = 0
    rate_limit: tuple[int, float] | None = None
    kind: str = "full"  # full: fresh dir per run; setup/incremental: one persistent dir
    state_key: str | None = None  # incremental cases share the dir of their setup case
    changed_rows: int = 0  # rows updated through the API before each run
    repeat: int | None = None  # None: the run's --repeat
    notes: tuple[str, ...] = field(default_factory=tuple)
    once: tuple[str, ...] = ()  # contenders run once only (long runs, or latency-bound ones)
    full_window: bool = False  # rate window filled before the first run, kept across runs

    @property
    def total_rows(self) -> int:
        return self.rows_per_table * len(self.tables)

    @property
    def expected_rows(self) -> int:
        """Rows each run must load: all of them, or only the changed ones when incremental."""
        return self.changed_rows if self.kind == "incremental" else self.total_rows


def label(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1000 and rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def emulator_tables(cases: list[Case]) -> dict[str, int]:
    """Tables the chosen cases read (generated once, at emulator start)."""
    return {table: case.rows_per_table for case in cases for table in case.tables}


def build_cases(
    sizes: Sizes, scenarios: tuple[str, ...], generic_everywhere: bool = False
) -> list[Case]:
    """Cases in run order: S1, S5 (before S4 changes rows), S4, S2, S3.

    dlt's generic rest_api source runs in S1 at the mid size only, as the issue says; one run
    of it takes minutes there, so S2/S3 include it only with `generic_everywhere`.
    """
    cases: list[Case] = []
    latency_contenders = EVERYONE if generic_everywhere else NO_GENERIC
    if "S1" in scenarios:
        cases += [
            Case(
                f"S1@{label(sizes.mid)}",
                "S1",
                "Bulk, zero latency, every contender",
                (MID,),
                sizes.mid,
                EVERYONE,
                once=("rest_api_generic",),
                notes=("rest_api, default: one run (over a minute each); the others: medians",),
            ),
            Case(
                f"S1@{label(sizes.big)}",
                "S1",
                "Bulk, zero latency (no dlt rest_api: minutes per run)",
                (BIG,),
                sizes.big,
                NO_DLT,
            ),
        ]
    if "S5" in scenarios:
        cases.append(
            Case(
                f"S5@{label(sizes.small)}",
                "S5",
                "Memory: peak RSS at the small size",
                (SMALL,),
                sizes.small,
                NO_DLT,
            )
        )
        if "S1" not in scenarios:
            cases.append(
                Case(
                    f"S5@{label(sizes.big)}",
                    "S5",
                    "Memory: peak RSS at the large size",
                    (BIG,),
                    sizes.big,
                    NO_DLT,
                )
            )
    if "S4" in scenarios:
        cases += _s4_cases(sizes)
    if "S2" in scenarios:
        limit = sizes.rate_limit
        cases.append(
            Case(
                f"S2@{sizes.many_tables}x{label(sizes.many_rows)}",
                "S2",
                f"{sizes.many_tables} tables, {sizes.s2_latency_ms} ms latency, "
                f"rate limit {limit[0]}/{limit[1]:g}s",
                many_names(sizes),
                sizes.many_rows,
                latency_contenders,
                latency_ms=sizes.s2_latency_ms,
                rate_limit=limit,
            )
        )
    if "S3" in scenarios:
        limit, tight = sizes.rate_limit, sizes.tight_rate_limit
        cases += [
            Case(
                f"S3@{label(sizes.mid)}",
                "S3",
                f"Throttled: {sizes.s3_latency_ms} ms latency, rate limit {limit[0]}/{limit[1]:g}s",
                (MID,),
                sizes.mid,
                latency_contenders,
                latency_ms=sizes.s3_latency_ms,
                rate_limit=limit,
            ),
            Case(
                f"S3b@{label(sizes.mid)}",
                "S3",
                f"Extra: the same rate in a window that binds ({tight[0]}/{tight[1]:g}s)",
                (MID,),
                sizes.mid,
                NO_GENERIC,
                latency_ms=sizes.s3_latency_ms,
                rate_limit=tight,
                notes=(
                    "not in the issue: at 2,000/300 s a 200-page table never meets the "
                    "limit, so this case checks that pacing adapts to 429s",
                ),
            ),
        ]
    if "L" in scenarios:
        cases += latency_cases(sizes)
    return cases


def latency_cases(sizes: Sizes) -> list[Case]:
    """Issue 17's headline of wall time: every call takes `latency_ms`; peers run once (their
    time is latency x pages, the same every run)."""
    ms, (limit, window) = sizes.latency_ms, sizes.binding_limit
    many = f"{sizes.many_tables}x{label(sizes.many_rows)}"
    return [
        Case(
            f"L@{label(sizes.mid)}",
            "L",
            f"{ms} ms a call, one table, no rate limit",
            (MID,),
            sizes.mid,
            ("connector", *LATENCY_PEERS),
            latency_ms=ms,
            once=LATENCY_PEERS,
        ),
        Case(
            f"L@{many}",
            "L",
            f"{ms} ms a call, {sizes.many_tables} tables, no rate limit",
            many_names(sizes),
            sizes.many_rows,
            ("connector", "rest_api_parquet"),
            latency_ms=ms,
            once=("rest_api_parquet",),
        ),
        Case(
            f"L window@{many}",
            "L",
            f"{ms} ms a call, {sizes.many_tables} tables, a full {limit:,}/{window:g} s window",
            many_names(sizes),
            sizes.many_rows,
            ("connector",),
            latency_ms=ms,
            rate_limit=sizes.binding_limit,
            full_window=True,
            notes=(
                f"A run of about {sizes.many_tables * 21} calls never fills a window of "
                f"{limit:,} on its own, so the harness first spends {limit:,} calls evenly over "
                f"{window:g} s (an account already at its limit: a slot frees every "
                f"{window / limit:.2f} s) and the runs follow one another without clearing it",
            ),
        ),
    ]


def _s4_cases(sizes: Sizes) -> list[Case]:
    big, small, changed = label(sizes.big), label(sizes.small), label(sizes.changed)
    only = ("connector",)
    return [
        Case(
            f"S4 setup@{big}",
            "S4",
            "Initial full sync (state for the incremental runs)",
            (BIG,),
            sizes.big,
            only,
            kind="setup",
            state_key="s4-big",
            repeat=1,
        ),
        Case(
            f"S4 {changed} changed@{big}",
            "S4",
            f"Incremental after {sizes.changed:,} rows (1%) were updated through the API",
            (BIG,),
            sizes.big,
            only,
            kind="incremental",
            state_key="s4-big",
            changed_rows=sizes.changed,
        ),
        Case(
            f"S4 no change@{big}",
            "S4",
            "Incremental with nothing changed",
            (BIG,),
            sizes.big,
            only,
            kind="incremental",
            state_key="s4-big",
        ),
        Case(
            f"S4 setup@{small}",
            "S4",
            "Initial full sync of the small table",
            (SMALL,),
            sizes.small,
            only,
            kind="setup",
            state_key="s4-small",
            repeat=1,
        ),
        Case(
            f"S4 {changed} changed@{small}",
            "S4",
            f"Incremental after the same {sizes.changed:,} rows were updated",
            (SMALL,),
            sizes.small,
            only,
            kind="incremental",
            state_key="s4-small",
            changed_rows=sizes.changed,
        ),
        Case(
            f"S4 no change@{small}",
            "S4",
            "Incremental with nothing changed",
            (SMALL,),
            sizes.small,
            only,
            kind="incremental",
            state_key="s4-small",
        ),
    ]
