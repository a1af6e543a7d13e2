"""API call accounting: what a sync cost, thread-safe, cheap to snapshot.

Caspio bills every call (token requests and failed calls included), so the client counts every
request it sends, by kind and by object, plus retries by reason and rows returned. The source
copies per-object figures into dlt's resource metrics; the pipeline layer prints the totals.
"""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

CallKind = Literal[
    "token", "listing", "fields", "records", "keys", "files", "content", "metadata", "other"
]
"""What a call was for: how the calls a run spent are counted and reported."""
_PER_OBJECT = {"records": "record_calls", "fields": "fields_calls"}
CallObserver = Callable[[CallKind, "str | None"], None]
"""Told of every call counted (kind, object), after the count: the call ledger's seam."""


class CaspioStats:
    """Counters of one client. ``snapshot()`` gives a plain dict (JSON-serialisable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        """Every HTTP request sent (what Caspio bills): token calls, failures and retries too."""
        self.by_call: Counter[str] = Counter()
        """Calls by what they were for (``CallKind``)."""
        self.retries: Counter[str] = Counter()
        """Retried attempts by reason: "429", "500", "connection", "timeout", "invalid_json"..."""
        self.auth_replays = 0
        """Requests replayed once after a 401 / stale-token 400."""
        self.retry_wait_seconds = 0.0
        self.rows = 0
        self.objects: dict[str, Counter[str]] = {}
        """Per Caspio object: "calls", "record_calls", "fields_calls", "rows"."""
        self.notes: dict[str, list[str]] = {}
        """Per Caspio object: what a user must know of its read (design changes, why it was
        read in full), in the order they happened."""
        self.observers: tuple[CallObserver, ...] = ()
        """Called with every call counted (``ledger.py``): whatever counts calls sees all."""

    @property
    def token_calls(self) -> int:
        return self.by_call["token"]

    @property
    def record_calls(self) -> int:
        return self.by_call["records"]

    def count_call(self, call: CallKind, obj: str | None = None) -> None:
        with self._lock:
            self.calls += 1
            self.by_call[call] += 1
            if obj is not None:
                c = self.objects.setdefault(obj, Counter())
                c["calls"] += 1
                if call in _PER_OBJECT:
                    c[_PER_OBJECT[call]] += 1
        for observer in self.observers:
            observer(call, obj)

    def add_observer(self, observer: CallObserver) -> None:
        with self._lock:
            self.observers = (*self.observers, observer)

    def count_retry(self, reason: str, wait: float) -> None:
        with self._lock:
            self.retries[reason] += 1
            self.retry_wait_seconds += wait

    def count_replay(self) -> None:
        with self._lock:
            self.auth_replays += 1

    def count_rows(self, obj: str, n: int) -> None:
        with self._lock:
            self.rows += n
            self.objects.setdefault(obj, Counter())["rows"] += n

    def note(self, obj: str, text: str) -> None:
        with self._lock:
            self.notes.setdefault(obj, []).append(text)

    def object_snapshot(self, obj: str) -> dict[str, int]:
        with self._lock:
            c = self.objects.get(obj, Counter())
            return {k: c[k] for k in ("calls", "record_calls", "fields_calls", "rows")}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "token_calls": self.by_call["token"],
                "listing_calls": self.by_call["listing"],
                "fields_calls": self.by_call["fields"],
                "record_calls": self.by_call["records"],
                "other_calls": self.by_call["other"],
                "retries": sum(self.retries.values()),
                "retries_by_reason": dict(self.retries),
                "auth_replays": self.auth_replays,
                "retry_wait_seconds": round(self.retry_wait_seconds, 3),
                "rows": self.rows,
                "objects": {
                    name: {k: c[k] for k in ("calls", "record_calls", "fields_calls", "rows")}
                    for name, c in sorted(self.objects.items())
                },
                "notes": {name: list(texts) for name, texts in sorted(self.notes.items())},
            }

    def __repr__(self) -> str:
        s = self.snapshot()
        return (
            f"CaspioStats(calls={s['calls']}, token_calls={s['token_calls']}, "
            f"record_calls={s['record_calls']}, retries={s['retries']}, rows={s['rows']})"
        )
