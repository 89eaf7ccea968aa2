"""Scenario runs at scale: a generate of N users (1-3 tracks each) and three audience syncs,
run in process; wall time and peak RSS of a fresh child process per N.

    python -m benchmarks.bench_scenario_scale 5000 20000 100000

The per-user figures show whether memory grows with what the fake stores (flat per user) or
with what the runner holds too.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

SCENARIO = """\
name: scale {n}
seed: 3
steps:
  - generate: {{name: users, count: {n}, companies: 50, track: {{min: 1, max: 3}}, page: 0}}
  - audience: {{name: Big One, members: {{from: users, fraction: 0.3}}}}
  - audience: {{name: Big One, members: {{from: users, fraction: 0.3}}}}
  - audience: {{name: Big One, members: {{from: users, fraction: 0.3}}}}
expect:
  count: {{endusers: {n}}}
"""


def child(n: int) -> dict:
    from mock_planhat.scenario import run_scenario
    from mock_planhat.scenario.load import load_text

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = run_scenario(load_text(SCENARIO.format(n=n), f"scale-{n}.yaml"))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"users": n, "passed": result.passed, "calls": result.calls,
            "seconds": round(seconds, 1), "peak_mib": round(peak / 1024),
            "kib_per_user": round((peak - base) / n, 1)}


def main(sizes: list[int]) -> None:
    print("| users | calls | passed | seconds | peak RSS (MiB) | KiB per user |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for n in sizes:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_scenario_scale",
                              "--child", str(n)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {row['users']:,} | {row['calls']:,} | {row['passed']} | {row['seconds']} | "
              f"{row['peak_mib']} | {row['kib_per_user']} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [5_000, 20_000])
