"""Scenario runs at scale: a generate of N users (1-3 tracks each) and three audience syncs,
run in process; wall time and peak RSS of a fresh child process per N.

    python -m benchmarks.bench_scenario_scale 5000 20000 100000

The per-user figures show whether memory grows with what the fake stores (flat per user) or
with what the runner holds too.
"""

from __future__ import annotations

import json
import os
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

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = run_scenario(load_text(SCENARIO.format(n=n), f"scale-{n}.yaml"))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peak = after.ru_maxrss  # KiB on Linux
    return {"users": n, "passed": result.passed, "calls": result.calls,
            "seconds": round(seconds, 1), "cpu": round(cpu, 1), "peak_mib": round(peak / 1024),
            "peak_kib": peak, "kib_per_user": round((peak - before.ru_maxrss) / n, 1)}


def main(sizes: list[int]) -> None:
    """One row per size; "KiB per user" is the peak's growth over the start ÷ N (it carries
    the run's fixed costs, such as importing Faker, so it falls as N grows); "marginal" is
    the peak's growth from the previous size ÷ the users added: what one more user costs."""
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    print("| users | calls | passed | seconds | CPU seconds | peak RSS (MiB) | KiB per user | "
          "marginal KiB per user |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    previous = None
    for n in sizes:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_scenario_scale",
                              "--child", str(n)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        marginal = "-" if previous is None or n <= previous["users"] else \
            f"{(row['peak_kib'] - previous['peak_kib']) / (n - previous['users']):.1f}"
        print(f"| {row['users']:,} | {row['calls']:,} | {row['passed']} | {row['seconds']} | "
              f"{row['cpu']} | {row['peak_mib']} | {row['kib_per_user']} | {marginal} |",
              flush=True)
        previous = row
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [5_000, 20_000])
