"""What every benchmark shares: a figure (median, spread, target, peer) and small helpers."""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field

TENANT_TOKEN = "mock-tenant-token"
API_TOKEN = "mock-api-token"
IN_PROCESS = "http://mock-planhat.local"


@dataclass
class Figure:
    """One line of the table: the rounds of a measure, its target and its peer."""

    name: str
    unit: str
    rounds: list[float]
    target: float
    higher_is_better: bool
    peer: str = ""  # what was measured beside it, in the same run
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def spread(self) -> str:
        """min–max of the rounds, as ± percent of the median."""
        if len(self.rounds) < 2 or not self.median:
            return "-"
        half = (max(self.rounds) - min(self.rounds)) / 2
        return f"±{100 * half / abs(self.median):.0f}% (n={len(self.rounds)})"

    @property
    def passed(self) -> bool:
        return self.median >= self.target if self.higher_is_better else self.median <= self.target

    @property
    def target_text(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {fmt(self.target)} {self.unit}".strip()

    def measured_text(self) -> str:
        return f"{fmt(self.median)} {self.unit}".strip()


def fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_rounds(ours: list[float], theirs: list[float]) -> list[float]:
    """Round-by-round ratios of two measures taken alternately."""
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def rss_kib() -> int:
    """This process's resident set size (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def serve_until_stdin_closes(url: str, stop) -> int:
    """A peer server child's main loop: print its URL, wait until the parent closes our stdin,
    then ``stop()`` the server."""
    print(f"listening on {url}", flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
    return 0
