"""What recording decisions costs figure 1a: the same batched run with the trace on and off.

    python -m benchmarks.bench_trace [--users 10000] [--rounds 5]

In process, figure 1a's scenario (``send_many`` of every call into a fresh fake), CPU time of
this process (``time.process_time``), the garbage collector on as in every run. "Off" replaces
``routes.common.trace`` — the one function every write route calls to keep its rows' decisions
on the journal entry and in the tenant's history — by a no-op, in every module that imported
it; "on" is the fake as shipped. Rounds alternate on/off so the box's load drift hits both
sides alike; the figure is the ratio of the medians, with the GC's full passes counted per
round (``gc.callbacks``). Not part of ``python -m benchmarks``: issue 10's budget is that the
trace costs at most 15 % of figure 1a.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from contextlib import contextmanager

from mock_planhat import Config, create_app
from mock_planhat.routes import common

from .bench_e2e import _check_state, _destination, _sent
from .traffic import generate

BUDGET = 0.15
USERS_OF_TRACE = ("mock_planhat.routes.common", "mock_planhat.routes.analytics",
                  "mock_planhat.routes.segment", "mock_planhat.routes.endusers",
                  "mock_planhat.routes.companies", "mock_planhat.routes.admin",
                  "mock_planhat.dashboard")


@contextmanager
def trace_off():
    """``trace`` is a no-op everywhere it was imported, for the duration."""
    real = common.trace
    patched = [m for m in map(sys.modules.get, USERS_OF_TRACE)
               if m is not None and getattr(m, "trace", None) is real]

    def off(tenant, kind, outcomes, via=None):
        return None

    for module in patched:
        module.trace = off
    try:
        yield
    finally:
        for module in patched:
            module.trace = real


class FullPasses:
    """Generation-2 collections while counting."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            self.count += 1


def one_round(calls: list, traffic, on: bool) -> tuple[float, int]:
    app = create_app(Config())
    destination = _destination(app)
    passes = FullPasses()
    gc.collect()
    gc.callbacks.append(passes)
    try:
        start = time.process_time()
        if on:
            _sent(destination.send_many(calls))
        else:
            with trace_off():
                _sent(destination.send_many(calls))
        seconds = time.process_time() - start
    finally:
        gc.callbacks.remove(passes)
    _check_state(app, len(traffic.users), traffic)
    return seconds, passes.count


def measure(users: int, rounds: int) -> dict:
    traffic = generate(users=users)
    calls = traffic.calls()
    times: dict[bool, list[float]] = {True: [], False: []}
    full: dict[bool, list[int]] = {True: [], False: []}
    for index in range(rounds * 2):
        on = index % 2 == (0 if (index // 2) % 2 == 0 else 1)  # on/off, then off/on, ...
        seconds, passes = one_round(calls, traffic, on)
        times[on].append(seconds)
        full[on].append(passes)
        print(f"  round {index // 2 + 1} trace {'on ' if on else 'off'}: {seconds:.2f} s CPU, "
              f"{passes} full GC passes", file=sys.stderr, flush=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {"users": users, "calls": len(calls), "rounds": rounds, "on": on, "off": off,
            "cost": on / off - 1, "full_on": statistics.median(full[True]),
            "full_off": statistics.median(full[False])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_trace",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds each, on and off")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    out = measure(args.users, args.rounds)
    print(f"trace on {out['on']:.2f} s, off {out['off']:.2f} s CPU (medians of "
          f"{out['rounds']} alternating rounds, {out['users']:,} users / {out['calls']:,} "
          f"calls, send_many): {100 * out['cost']:+.1f}% (budget +{100 * BUDGET:.0f}%); "
          f"full GC passes a round {out['full_on']:g} on / {out['full_off']:g} off; "
          f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    return 0 if out["cost"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
