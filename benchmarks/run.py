"""``python -m benchmarks``: every figure of the benchmark, a table, and RESULTS.md.

Each figure is measured beside its peer in the same run (alternating rounds; the machine is
shared and noisy), reported as the median of the rounds with their spread. ``--quick`` runs
fewer rounds and a smaller scenario for a smoke check (its figures are not the targets').
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .common import Figure

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FIGURES = ("e2e", "matching", "http", "startup", "memory", "dashboard")


def measure(only: set[str], quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    if "e2e" in only:
        from . import bench_e2e
        from .traffic import generate

        traffic = generate(users=1_000 if quick else 10_000)
        figures.append(bench_e2e.batched(traffic, rounds=2 if quick else 5))
        figures.append(bench_e2e.one_by_one(traffic, rounds=2 if quick else 5))
    if "matching" in only:
        from .bench_matching import flat_matching

        figures.append(flat_matching(rounds=2 if quick else 7))
    if "http" in only:
        from .bench_http import over_http

        figures.extend(over_http(rounds=2 if quick else 16, per_round=200))
    if "startup" in only:
        from .bench_startup import startup

        figures.append(startup(rounds=2 if quick else 7))
    if "memory" in only:
        from .bench_memory import memory

        figures.append(memory(rounds=1 if quick else 3))
    if "dashboard" in only:
        from .bench_dashboard import dashboard

        figures.append(dashboard(rounds=2 if quick else 5,
                                 users=10_000 if quick else 100_000,
                                 activities=50_000 if quick else 500_000))
    return figures


def table(figures: list[Figure]) -> str:
    head = ["figure", "measured (median)", "spread", "target", "peer, same run", "pass"]
    rows = [[f.name, f.measured_text(), f.spread, f.target_text, f.peer,
             "PASS" if f.passed else "FAIL"] for f in figures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(figures: list[Figure], seconds: float, load: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"{BEGIN}\nLast full run: {stamp}, Python {platform.python_version()}, "
             f"{platform.machine()}, {os.cpu_count()} CPUs, {seconds:.0f} s "
             f"(`python -m benchmarks`); {load}.\n\n"
             f"{table(figures)}\n{END}")
    text = RESULTS.read_text() if RESULTS.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=FIGURES,
                        help="run only this figure (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: fewer rounds, smaller scenario; RESULTS.md untouched")
    args = parser.parse_args(argv)
    begin, load_before = time.perf_counter(), os.getloadavg()[0]
    figures = measure(set(args.only or FIGURES), args.quick)
    seconds = time.perf_counter() - begin
    load = (f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
            f"end (other work on the machine)")
    print(table(figures))
    print(f"\n{seconds:.0f} s; {load}")
    if not args.quick and not args.only:
        write_results(figures, seconds, load)
        print(f"wrote {RESULTS}")
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
